"""What a G-code line sent through the node's sender link means: pure, no I/O.

Two questions are answered here, for the GRBL relay (``gateway/policies/grbl_relay.py``):

* **Does this line need an open session?** The node's second interlock (the relay being
  the first) refuses, without a session, every line that can make the machine move or
  switch an output on. The rule is a whitelist, because GRBL forks add motion codes of
  their own (grblHAL's G5 spline, M62-M65 outputs): a line is free only when every word
  on it is known to be harmless. Free: blank and comment-only lines; the ``$`` reads and
  state commands (``$``, ``$$``, ``$#``, ``$G``, ``$I``, ``$N``, ``$C`` check mode, ``$X``
  unlock, ``$SLP`` sleep); G-code made only of modal settings (units, planes, distance
  mode, work offsets, feed mode, ``G4`` dwell, ``G80``) and of program and stop words
  (``M0 M1 M2 M30 M5 M9 M56``), with axis words only under ``G10``, ``G92`` or
  ``G43.1``, which set offsets and do not move. Everything else needs a session:
  ``G0 G1 G2 G3 G28 G30 G38.x``, axis or arc words alone (they continue the modal
  motion), ``M3 M4`` (spindle, laser), ``M7 M8`` (coolant, air assist), ``$J=`` jogs,
  ``$H`` homing, and settings writes (``$x=``, ``$Nx=`` startup lines that run at every
  reset, ``$RST=``): nobody reconfigures a machine they are not badged in on.
* **What does the sender tell us about its job?** Senders and CAM post-processors put
  the job's name and sometimes its length in comments; GRBL itself ignores comments.
  :func:`job_hint` reads the forms we know (see there).

Comments follow GRBL 1.1: ``(...)`` anywhere on the line, ``;`` to the end of the line.
Whitespace is insignificant and letters are case-insensitive, as in GRBL's parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class Comment:
    text: str  # stripped
    parenthesised: bool  # `(text)`, else `; text`


class LineKind(StrEnum):
    BLANK = "blank"  # nothing but whitespace and comments: GRBL answers ok
    SYSTEM = "system"  # a `$` command
    GCODE = "gcode"  # a G-code block


@dataclass(frozen=True)
class Line:
    """One line as the relay judges it."""

    kind: LineKind
    code: str  # upper case, comments and whitespace removed
    comments: tuple[Comment, ...]  # in order
    needs_session: bool


# `$` commands that read or change no setting and move nothing.
FREE_SYSTEM = frozenset({"$", "$$", "$#", "$G", "$I", "$N", "$C", "$X", "$SLP"})
# G codes that set modal state or wait, never move (G53 only modifies a motion on its line).
FREE_G = frozenset(
    {
        "4",
        "10",
        "17",
        "18",
        "19",
        "20",
        "21",
        "40",
        "43.1",
        "49",
        "53",
        "54",
        "55",
        "56",
        "57",
        "58",
        "59",
        "59.1",
        "59.2",
        "59.3",
        "61",
        "80",
        "90",
        "90.1",
        "91",
        "91.1",
        "92",
        "92.1",
        "93",
        "94",
    }
)
# G codes under which axis words set offsets instead of moving.
AXIS_SETTERS = frozenset({"10", "92", "43.1"})
# M codes that stop or end things: program pause and end, spindle and coolant off.
FREE_M = frozenset({"0", "1", "2", "30", "5", "9", "56"})
# Words that never move anything by themselves.
FREE_WORDS = frozenset("FSTNPLHDQ")
AXIS_WORDS = frozenset("XYZABCUVWIJKR")

_WORD = re.compile(r"([A-Z])([-+]?(?:\d+\.?\d*|\.\d+))")
_PAREN = re.compile(r"\(([^()]*)\)")


def split_comments(text: str) -> tuple[str, tuple[Comment, ...]]:
    """The code of a line (upper case, no whitespace) and its comments, as GRBL sees them.

    An unclosed ``(`` comments out the rest of the line, as in GRBL's line reader.
    """
    comments: list[Comment] = []
    code: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "(":
            end = text.find(")", i + 1)
            if end < 0:
                comments.append(Comment(text[i + 1 :].strip(), parenthesised=True))
                break
            comments.append(Comment(text[i + 1 : end].strip(), parenthesised=True))
            i = end + 1
            continue
        if c == ";":
            comments.append(Comment(text[i + 1 :].strip(), parenthesised=False))
            break
        if not c.isspace():
            code.append(c.upper())
        i += 1
    return "".join(code), tuple(comments)


def _number(value: str) -> str:
    """``01`` -> ``1``, ``38.20`` -> ``38.2``: the code as GRBL reads its number."""
    whole, _, frac = value.lstrip("+").partition(".")
    whole = whole.lstrip("0") or "0"
    frac = frac.rstrip("0")
    return f"{whole}.{frac}" if frac else whole


def gcode_needs_session(code: str) -> bool:
    """True unless every word of the block is known to move nothing (see module doc)."""
    pos = 0
    g_codes: list[str] = []
    axis = False
    for match in _WORD.finditer(code):
        if match.start() != pos:
            return True  # something that is not a word: GRBL will refuse it, so may we
        pos = match.end()
        letter, value = match.group(1), match.group(2)
        if letter == "G":
            number = _number(value)
            if number not in FREE_G:
                return True
            g_codes.append(number)
        elif letter == "M":
            if _number(value) not in FREE_M:
                return True
        elif letter in AXIS_WORDS:
            axis = True
        elif letter not in FREE_WORDS:
            return True
    if pos != len(code):
        return True
    return axis and not any(g in AXIS_SETTERS for g in g_codes)


def system_needs_session(code: str) -> bool:
    return code not in FREE_SYSTEM


def classify(text: str) -> Line:
    """Judge one line (without its line ending) the way the relay must."""
    code, comments = split_comments(text)
    if not code:
        return Line(LineKind.BLANK, code, comments, needs_session=False)
    if code.startswith("$"):
        return Line(LineKind.SYSTEM, code, comments, needs_session=system_needs_session(code))
    return Line(LineKind.GCODE, code, comments, needs_session=gcode_needs_session(code))


@dataclass(frozen=True)
class JobHint:
    name: str | None = None
    total_lines: int | None = None


# `; job: box`, `(name: box)`, `(file=box.nc)`, `; filename: box.gcode`, `(program: 1001)`
_NAMED = re.compile(
    r"^(?:job(?:\s*name)?|name|file(?:\s*name)?|program(?:\s*name)?|title)\s*[:=]\s*(.+)$",
    re.IGNORECASE,
)
# `; lines: 1234`, `(total lines = 1234)`, `; line count: 1234`
_TOTAL = re.compile(r"^(?:total\s+lines|lines|line\s+count)\s*[:=]?\s*(\d{1,9})$", re.IGNORECASE)
# A bare file name as a comment: `; box.gcode`, `(plaque_v2.nc)`
_FILE = re.compile(r"^[\w .+\-]{1,120}\.(?:gcode|gc|g|nc|ngc|tap|cnc|txt)$", re.IGNORECASE)
MAX_NAME_CHARS = 120


def job_hint(comment: Comment, *, first_in_job: bool) -> JobHint:
    """The job name or length a comment gives, if it gives one.

    Forms recognised: ``job:``/``name:``/``file:``/``filename:``/``program:``/``title:``
    followed by the name (``:`` or ``=``), ``lines: N``/``total lines: N``/``line
    count: N`` for the number of G-code lines the sender will stream, a bare file name
    (``; box.gcode``, ``(plaque.nc)``), and, for the first comment of a job only, any
    short parenthesised text (the ``(name)`` CAM programs put on their first line).
    Generator banners (``; LightBurn 1.4.03``) are not names.
    """
    text = comment.text
    if not text:
        return JobHint()
    if match := _TOTAL.match(text):
        return JobHint(total_lines=int(match.group(1)))
    if match := _NAMED.match(text):
        return JobHint(name=_name(match.group(1)))
    if _FILE.match(text):
        return JobHint(name=_name(text))
    if first_in_job and comment.parenthesised and _looks_like_title(text):
        return JobHint(name=_name(text))
    return JobHint()


_BANNERS = re.compile(
    r"^(?:lightburn|generated|created|made|grbl|postprocessor|post|fusion|vcarve|aspire|"
    r"estlcam|carbide|kiri|inkscape|lasergrbl|ugs|bcnc)\b",
    re.IGNORECASE,
)


def _looks_like_title(text: str) -> bool:
    return len(text) <= MAX_NAME_CHARS and not _BANNERS.match(text) and ":" not in text


def _name(text: str) -> str | None:
    name = " ".join(text.split())[:MAX_NAME_CHARS]
    return name or None
