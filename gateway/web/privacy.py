"""Personal data on the web: a member's export (their own, or by staff) and the erasure.

The work is the hub's (``gateway.hub.personal_data``); these views check who asks,
carry the answer over HTTP and say what happened. An export is a form POST (CSRF
checked) that answers with a JSON file to download: it writes an audit entry, so it is
not a GET a prefetching browser or a crawler could trigger. The erasure is staff only
(fabmanager, admin), behind a confirmation page where the member's id must be typed
again: it cannot be undone.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext, ngettext
from werkzeug.wrappers import Response as BaseResponse

from gateway.core.clock import utcnow
from gateway.hub import members as hub_members
from gateway.hub import personal_data
from gateway.web.auth import current_user, requires
from gateway.web.context import get_store
from gateway.web.people import EVERYONE, STAFF, _context, _lang, _say

privacy = Blueprint("privacy", __name__)


def export_response(document: dict[str, Any], member_id: str) -> Response:
    """The export as a JSON file to save (UTF-8, names as they are written)."""
    body = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True, default=str)
    resp = Response(body + "\n", mimetype="application/json")
    day = document["exported_at"][:10]
    resp.headers["Content-Disposition"] = (
        f'attachment; filename="fabgate-export-{member_id}-{day}.json"'
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _actor() -> str:
    user = current_user()
    if user is None:  # @requires already turned anonymous requests away
        abort(401)
    return user.member_id


@privacy.post("/me/export")
@requires(*EVERYONE)
def my_export() -> Response:
    """Right of access: every member downloads what the hub holds about them."""
    member_id = _actor()
    document = personal_data.export_member(get_store(), member_id, now=utcnow(), by=member_id)
    return export_response(document, member_id)


@privacy.post("/members/<member_id>/export")
@requires(*STAFF)
def member_export(member_id: str) -> Response:
    """A member's export made by staff (a request by post or at the desk)."""
    store = get_store()
    try:
        document = personal_data.export_member(store, member_id, now=utcnow(), by=_actor())
    except KeyError:
        abort(404)
    return export_response(document, member_id)


@privacy.route("/members/<member_id>/erase", methods=["GET", "POST"])
@requires(*STAFF)
def erase(member_id: str) -> BaseResponse | str | tuple[str, int]:
    """GET: what erasing means and whether it can be done now. POST: do it, once the
    member's id is typed in the confirmation field."""
    store = get_store()
    member = hub_members.member(store, member_id)
    if member is None:
        abort(404)
    refusal: personal_data.ErasureRefused | None = None
    try:
        personal_data.check_erasable(store, member_id)
    except personal_data.ErasureRefused as exc:
        refusal = exc
    error = None
    if request.method == "POST" and refusal is None:
        if request.form.get("confirm", "").strip() != member_id:
            error = gettext("The id typed does not match: nothing was erased.")
        else:
            try:
                done = personal_data.erase_member(store, member_id, now=utcnow(), by=_actor())
            except personal_data.ErasureRefused as exc:  # changed since the check above
                refusal = exc
            else:
                _say(
                    "ok",
                    ngettext(
                        "Member erased: now shown as “%(pseudonym)s” (%(num)s badge removed).",
                        "Member erased: now shown as “%(pseudonym)s” (%(num)s badges removed).",
                        done.badges,
                        pseudonym=done.pseudonym,
                    ),
                )
                return redirect(url_for("people.member", member_id=member_id, lang=_lang()), 303)
    if refusal is not None:
        error = _refusal_text(refusal)
    page = render_template(
        "erase.html", **_context(member=member, error=error, refused=refusal is not None)
    )
    return (page, 400) if request.method == "POST" else page


def _refusal_text(refusal: personal_data.ErasureRefused) -> str:
    """The hub names why an erasure is refused (``refusal.key``); the page says it."""
    v = refusal.values
    if refusal.key == "erase.err.open_session":
        return gettext(
            "Cannot erase: a session is open on %(machine)s. End it at the machine first.",
            machine=v["machine"],
        )
    if refusal.key == "erase.err.balance":
        return gettext(
            "Cannot erase: the prepaid credit is negative (%(cents)s cents owed). Settle it first.",
            cents=v["cents"],
        )
    if refusal.key == "erase.err.unbilled":
        count = int(str(v["count"]))
        return ngettext(
            "Cannot erase: %(num)s priced session is not invoiced yet. Close its month first, "
            "so the invoice is issued in their name.",
            "Cannot erase: %(num)s priced sessions are not invoiced yet. Close their month "
            "first, so the invoice is issued in their name.",
            count,
        )
    if refusal.key == "erase.err.done":
        return gettext("This member is already erased.")
    return str(refusal)
