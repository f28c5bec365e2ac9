"""The board's words for what a machine controller says (``T:21.3/0 B:21.3/0``, ``ALARM:2``,
``link lost``, ``Operational (job finished)``).

Drivers report their controller's own text (``MachineReport.detail``): exact, and what a
technician searches the firmware's manual for, but not what a member reads on a wall
screen. :func:`phrases` reads that text into phrases (a code and its values) without any
I/O or language, so it is tested alone; :func:`describe` says them in the page's
language. The board keeps the raw text in the card's ``title`` for technicians. Text
that matches nothing known gives no phrase: the board then shows it as it came.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from flask_babel import format_decimal, gettext

Values = dict[str, str]


@dataclass(frozen=True)
class Phrase:
    code: str
    values: Values = field(default_factory=dict)


_TEMP = re.compile(r"^(?P<part>[TB]\d?):(?P<actual>-?\d+(?:\.\d+)?)/(?P<target>-?\d+(?:\.\d+)?)$")
_ALARM = re.compile(r"^ALARM:(?P<code>\d+)\b")
_ERROR = re.compile(r"^error:(?P<code>\d+)\b")
_AMPS = re.compile(r"^(?P<amps>\d+(?:\.\d+)?) A$")
_LINES = re.compile(r"^(?P<done>\d+) of (?P<total>\d+) lines$")
_PERMISSIVE = re.compile(r"^permissive off: (?P<name>.+)$")
_OCTOPRINT_JOB = re.compile(r"^(?P<state>[A-Z][\w ]*?) \(job (?P<ended>\w+)\)$")

# Whole texts a driver sends as they are (GRBL states, node and driver words).
_WORDS = {
    "link lost": "link_lost",
    "no answer": "no_answer",
    "not started": "not_started",
    "closed": "link_closed",
    "cancelled": "job_cancelled",
    "paused": "paused",
    "printer not connected": "not_connected",
    "Idle": "idle",
    "Run": "running",
    "Hold": "paused",
    "Jog": "jogging",
    "Home": "homing",
    "Check": "check_mode",
    "Sleep": "sleeping",
    "Door": "door_open",
    "Alarm": "alarm",
    "Operational": "ready",
    "Printing": "printing",
    "Printing from SD": "printing",
    "Paused": "paused",
    "Pausing": "pausing",
    "Cancelling": "cancelling",
    "Offline": "not_connected",
    "Error": "error",
}


def _degrees(text: str) -> str:
    return str(round(float(text)))


def _one(part: str) -> list[Phrase]:
    part = part.strip()
    if not part:
        return []
    temps = [_TEMP.match(p) for p in part.split()]
    if all(temps):
        out = []
        for m in temps:
            assert m is not None
            what = "nozzle" if m["part"].startswith("T") else "bed"
            values = {"what": what, "actual": _degrees(m["actual"])}
            if float(m["target"]) > 0:
                out.append(Phrase("heating", {**values, "target": _degrees(m["target"])}))
            else:
                out.append(Phrase("temperature", values))
        return out
    for pattern, code in ((_ALARM, "alarm"), (_ERROR, "error")):
        if m := pattern.match(part):
            return [Phrase(code, {"code": m["code"]})]
    if m := _AMPS.match(part):
        return [Phrase("current", {"amps": m["amps"]})]
    if m := _LINES.match(part):
        return [Phrase("lines", {"done": m["done"], "total": m["total"]})]
    if m := _PERMISSIVE.match(part):
        return [Phrase("permissive_off", {"name": m["name"]})]
    if m := _OCTOPRINT_JOB.match(part):
        state = _WORDS.get(m["state"])
        if state is None:
            return []
        ended = f"job_{m['ended']}"
        return [Phrase(state), Phrase(ended)] if ended in _PLAIN else []
    base = part.split(":")[0].split(" ")[0] if part[:1].isupper() else part
    word = _WORDS.get(part) or _WORDS.get(base)
    return [Phrase(word)] if word else []


def phrases(detail: str | None) -> list[Phrase]:
    """The phrases a controller's detail says, in order; [] when any part of it is text
    the board does not know (then the raw text is shown, not half of it)."""
    if not detail:
        return []
    out: list[Phrase] = []
    for section in detail.split(";"):
        for piece in section.split(", "):
            found = _one(piece)
            if not found and piece.strip():
                return []
            out.extend(found)
    return out


def _say(p: Phrase) -> str:
    v = p.values
    if p.code in ("temperature", "heating"):
        what = gettext("nozzle") if v["what"] == "nozzle" else gettext("bed")
        if p.code == "heating":
            return gettext(
                "%(what)s %(actual)s °C (target %(target)s °C)",
                what=what,
                actual=v["actual"],
                target=v["target"],
            )
        return gettext("%(what)s %(actual)s °C", what=what, actual=v["actual"])
    if p.code == "alarm":
        return gettext("in alarm (code %(code)s)", code=v["code"])
    if p.code == "error":
        return gettext("in error (code %(code)s)", code=v["code"])
    if p.code == "current":
        return gettext("drawing %(amps)s A", amps=format_decimal(float(v["amps"])))
    if p.code == "lines":
        return gettext("line %(done)s of %(total)s", done=v["done"], total=v["total"])
    if p.code == "permissive_off":
        return gettext("interlock off: %(name)s", name=v["name"])
    return _PLAIN[p.code]()


# Codes said without values (every code _WORDS and _OCTOPRINT_JOB give).
_PLAIN: dict[str, Callable[[], str]] = {
    "link_lost": lambda: gettext("link lost"),
    "no_answer": lambda: gettext("not answering"),
    "not_started": lambda: gettext("driver not started yet"),
    "link_closed": lambda: gettext("link closed"),
    "job_cancelled": lambda: gettext("job cancelled"),
    "job_finished": lambda: gettext("job finished"),
    "job_failed": lambda: gettext("job failed"),
    "paused": lambda: gettext("paused"),
    "pausing": lambda: gettext("pausing"),
    "cancelling": lambda: gettext("cancelling"),
    "not_connected": lambda: gettext("printer not connected"),
    "idle": lambda: gettext("at rest"),
    "running": lambda: gettext("running"),
    "jogging": lambda: gettext("moved by hand"),
    "homing": lambda: gettext("homing"),
    "check_mode": lambda: gettext("G-code check mode"),
    "sleeping": lambda: gettext("asleep"),
    "door_open": lambda: gettext("door open"),
    "alarm": lambda: gettext("in alarm"),
    "ready": lambda: gettext("ready"),
    "printing": lambda: gettext("printing"),
    "error": lambda: gettext("in error"),
}


def describe(detail: str | None) -> str | None:
    """The detail in the reader's words ("buse 21 °C, plateau 21 °C"), or None when the
    board does not know how to say it."""
    said = phrases(detail)
    if not said:
        return None
    return ", ".join(_say(p) for p in said)
