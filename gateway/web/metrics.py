"""``GET /metrics``: Prometheus' view of the hub, behind a bearer token.

Who may read it: a bearer token with the ``metrics`` scope (made by an admin on the API
tokens page, so a monitoring server gets nothing else), or a token of the hub
configuration's ``api_tokens`` (every scope). The numbers say which nodes exist, when
they were last seen and how busy the site is: not for the public. What the metrics are
is ``gateway.hub.metrics`` (and docs/operations.md); this view only answers the request.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from gateway.core.clock import utcnow
from gateway.hub.metrics import CONTENT_TYPE, render
from gateway.hub.monitor import HubMonitor
from gateway.web.auth import public
from gateway.web.bearer import check_bearer, endpoint_scope, scope
from gateway.web.context import get_store

metrics = Blueprint("metrics", __name__)


@metrics.before_request
def _require_token() -> tuple[Response, int, dict[str, str]] | None:
    return check_bearer(endpoint_scope())


@metrics.get("/metrics")
@public
@scope("metrics")
def scrape() -> Response:
    monitor: HubMonitor | None = current_app.extensions.get("fabgate.monitor")
    if monitor is None:  # an app without a hub process (tests, tools): the database only
        body = render(get_store(), None, utcnow())
    else:
        body = render(get_store(), monitor.view(), monitor.wall())
    return Response(body, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})
