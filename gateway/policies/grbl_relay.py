"""Relaying a G-code sender to the GRBL controller the node owns: pure, no I/O.

On a real CNC or diode laser a sender (LightBurn, UGS, bCNC) streams the job over the
controller's USB serial port. Two programs on one serial port split the controller's
replies between them (a sender waiting on each ``ok`` then stalls), so the node owns the
port and relays the sender through a link of its own (``gateway/drivers/machines/
sender_link.py``: raw TCP, the "network GRBL" senders know, or a pty). This module
decides what each byte does; the I/O module only moves bytes.

**Replies.** GRBL answers every line it receives with exactly one ``ok`` or ``error:N``,
in order (GRBL 1.1 ends a line at each ``\\r`` or ``\\n`` and answers an empty line with
``ok`` too), and the node itself never sends a line. So the relay keeps one queue of the
sender's lines in order, each either *forwarded* (its reply will come from the
controller) or *refused* (the relay answers it itself). A reply from the controller
belongs to the oldest forwarded line; a refused line's answer is released as soon as
every line before it has been answered. The sender therefore sees one reply per line, in
its own order, which both streaming protocols need: send-response waits for each, and
character counting frees each line's bytes of GRBL's 128-byte buffer on its reply. A
sender that disconnects leaves its lines in the queue as *orphans*: their late replies
are swallowed, so the next sender never takes them for answers to its own lines.
Push messages (``[MSG:..]``, ``ALARM:n``, settings, the banner) always pass. The welcome
banner means the controller reset and flushed its buffer: the queue is emptied then.

**Status reports.** GRBL answers ``?`` with one ``<...>`` report that says nothing about
who asked, and merges two ``?`` that arrive close together into one report. Counting
reports per asker therefore cannot work, and letting both the node and the sender poll
doubles GRBL's load. The relay shares one stream of reports instead: every report reaches
the node's own tracking (the sender's ``?`` are as good as the node's), the node sends a
``?`` of its own only when no ``?`` (from anyone) went to the controller for a whole
poll interval (so a sender that polls at least as often leaves the node silent), and a
report is kept from the sender only when the node has a ``?`` of its own unanswered and
the sender has none. Every ``?`` the sender sends is thus answered by one report: the
next one (if GRBL merged it with the node's, the merged one). No report the sender asked
for is ever withheld, and reports nobody asked for (a controller's auto-reports) pass.

**Real-time bytes** (``?``, ``!``, ``~``, Ctrl-X and every byte from 0x80, the
overrides) pass at once, even in the middle of a line, exactly as GRBL picks them out of
its input before the line reader.

**The second interlock.** Without an open session, lines that move or switch on the
machine (``gateway/policies/gcode.py``) are refused: the sender gets a ``[MSG:...]``
saying why and ``error:9``, GRBL's own "locked out" answer, which every sender already
shows and stops on; the line never reaches the controller. To judge a line the relay
needs all of it, so without a session a line's bytes wait for its end (real-time bytes
still pass at once, which is what GRBL does with them anyway). With a session open,
bytes pass straight through, in order; a line's fate is decided by the session state at
its first byte, so a line half-sent when a session ends is completed, never cut.

**Counting.** G-code lines forwarded (not ``$`` commands, comments or blank lines) and
their replies give a job's progress: lines acknowledged of lines sent, and a percentage
when a comment gave the total (``; lines: 1234``); comments may also name the job
(:func:`gateway.policies.gcode.job_hint`; a bare ``(title)`` only before the stream's
first motion line). A count restarts at a job header that follows a few set-up lines
(no motion yet), and the GRBL driver starts a new count when a job ends.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from gateway.policies.gcode import Comment, LineKind, classify, job_hint

STATUS_QUERY = 0x3F  # ?
FEED_HOLD = 0x21  # !
CYCLE_START = 0x7E  # ~
SOFT_RESET = 0x18
REALTIME = frozenset({STATUS_QUERY, FEED_HOLD, CYCLE_START, SOFT_RESET})
EOL = frozenset({0x0A, 0x0D})

REFUSAL = b"[MSG:fabgate: no session open on this machine, badge in first]\r\nerror:9\r\n"
MAX_LINE = 1024  # longer than any controller's line buffer; a longer held line is refused
MAX_QUERIES = 8  # unanswered `?` remembered per asker

_RESPONSE = re.compile(rb"(?:ok|error:\d+)")
_BANNER = re.compile(rb"Grbl \S+ \[.*\]")


def is_realtime(byte: int) -> bool:
    return byte in REALTIME or byte >= 0x80


class Fate(StrEnum):
    FORWARDED = "forwarded"
    REFUSED = "refused"


@dataclass
class _Pending:
    fate: Fate
    job_line: bool
    stream: int
    orphan: bool = False


@dataclass(frozen=True)
class Relayed:
    """What one chunk from the sender turns into."""

    to_controller: bytes = b""
    to_sender: bytes = b""


@dataclass
class StreamCount:
    """The sender's current job stream, as far as the relay has seen it."""

    sent: int = 0  # G-code lines forwarded
    acked: int = 0  # ... answered with ok or error
    errors: int = 0
    name: str | None = None
    total: int | None = None
    moved: bool = False  # a line that needs a session (motion, outputs) was forwarded

    @property
    def percent(self) -> float | None:
        if not self.total:
            return None
        return min(100.0, 100.0 * self.acked / self.total)


@dataclass
class GrblRelay:
    """The relay's whole state; the caller serialises calls (one lock) and moves bytes.

    Times are the caller's monotonic clock. ``session_open`` is set by the node.
    """

    poll_interval: float
    answer_timeout: float
    session_open: bool = False
    connected: bool = False
    count: StreamCount = field(default_factory=StreamCount)
    refused: int = 0  # lines refused since start, for tests and logs
    _queue: deque[_Pending] = field(default_factory=deque)
    _line: bytearray = field(default_factory=bytearray)
    _line_started: bool = False
    _line_passing: bool = False  # the current line's bytes go straight through
    _line_overflow: bool = False
    _stream: int = 0
    _sender_queries: int = 0
    _node_queries: int = 0  # the node's own `?` not answered yet
    _node_query_at: float = float("-inf")
    _last_query_at: float = float("-inf")

    # -- the sender's side ------------------------------------------------------------

    def connect(self) -> None:
        """A sender connected: it starts with no query and no line of its own."""
        self.connected = True
        self._sender_queries = 0
        self._reset_line()

    def disconnect(self) -> None:
        """The sender went: its lines become orphans, its half line is dropped."""
        self.connected = False
        self._sender_queries = 0
        self._reset_line()
        kept: deque[_Pending] = deque()
        for pending in self._queue:
            if pending.fate is Fate.FORWARDED:
                pending.orphan = True
                kept.append(pending)
        self._queue = kept

    def from_sender(self, data: bytes, now: float) -> Relayed:
        to_controller = bytearray()
        to_sender = bytearray()
        for byte in data:
            if is_realtime(byte):
                to_controller.append(byte)
                if byte == STATUS_QUERY:
                    self._sender_queries = min(self._sender_queries + 1, MAX_QUERIES)
                    self._last_query_at = now
                elif byte == SOFT_RESET:
                    self._reset_line()  # GRBL drops its half line on a reset
                continue
            if not self._line_started:
                self._line_started = True
                self._line_passing = self.session_open
            if byte in EOL:
                self._end_line(byte, to_controller, to_sender)
                continue
            if self._line_passing:
                to_controller.append(byte)
            if len(self._line) < MAX_LINE:
                self._line.append(byte)
            else:
                self._line_overflow = True
        return Relayed(bytes(to_controller), bytes(to_sender))

    def _end_line(self, eol: int, to_controller: bytearray, to_sender: bytearray) -> None:
        line = classify(bytes(self._line).decode("ascii", errors="replace"))
        job_line = line.kind is LineKind.GCODE
        allowed = self._line_passing or (
            not self._line_overflow and (self.session_open or not line.needs_session)
        )
        if allowed:
            if not self._line_passing:
                to_controller += self._line
            to_controller.append(eol)
            self._read_hints(line.comments)
            self._queue.append(_Pending(Fate.FORWARDED, job_line, self._stream))
            if job_line:
                self.count.sent += 1
            if line.needs_session:
                self.count.moved = True
        else:
            self.refused += 1
            self._queue.append(_Pending(Fate.REFUSED, False, self._stream))
            to_sender += self._release_refused()
        self._reset_line()

    def _read_hints(self, comments: tuple[Comment, ...]) -> None:
        for comment in comments:
            count = self.count
            hint = job_hint(comment, first_in_job=not count.moved and count.name is None)
            if not (hint.name or hint.total_lines):
                continue
            if not count.moved and count.name is None and count.total is None and count.sent:
                # A job's header after a few set-up lines: the job starts at its header.
                self.new_stream()
                count = self.count
            if hint.name and count.name is None:
                count.name = hint.name
            if hint.total_lines and count.total is None:
                count.total = hint.total_lines

    def _reset_line(self) -> None:
        self._line.clear()
        self._line_started = self._line_passing = self._line_overflow = False

    def _release_refused(self) -> bytes:
        """The answers of refused lines that no forwarded line waits before any more."""
        out = bytearray()
        while self._queue and self._queue[0].fate is Fate.REFUSED:
            self._queue.popleft()
            if self.connected:
                out += REFUSAL
        return bytes(out)

    # -- the controller's side --------------------------------------------------------

    def from_controller(self, raw: bytes, now: float) -> bytes:
        """One line from the controller (with its line ending): what the sender gets."""
        text = raw.strip()
        out = raw
        if _RESPONSE.fullmatch(text):
            out = self._on_response(raw, text)
        elif text.startswith(b"<") and text.endswith(b">"):
            out = raw if self._status_for_sender(now) else b""
        elif _BANNER.fullmatch(text):
            self.controller_reset()
        return out if self.connected else b""

    def _on_response(self, raw: bytes, text: bytes) -> bytes:
        if not self._queue:
            return raw  # not ours to judge: pass it on unchanged
        pending = self._queue.popleft()
        out = b"" if pending.orphan else raw
        if pending.job_line and pending.stream == self._stream:
            self.count.acked += 1
            if text.startswith(b"error"):
                self.count.errors += 1
        return out + self._release_refused()

    def _status_for_sender(self, now: float) -> bool:
        if self._sender_queries:
            self._sender_queries -= 1
            return True
        if self._node_queries:
            self._node_queries -= 1
            return False
        return True

    def controller_reset(self) -> None:
        """The controller restarted (banner) or its link was lost: nothing is in flight."""
        self._queue.clear()
        self._sender_queries = self._node_queries = 0

    # -- the node's side --------------------------------------------------------------

    def poll_due(self, now: float) -> bool:
        """True (and noted) when the node should send its own ``?`` now."""
        if now - self._node_query_at > self.answer_timeout:
            self._node_queries = 0  # their answers were lost (noise, a reset, silence)
        if now - self._last_query_at < self.poll_interval:
            return False
        self._node_queries = min(self._node_queries + 1, MAX_QUERIES)
        self._node_query_at = self._last_query_at = now
        return True

    def new_stream(self) -> StreamCount:
        """A job ended: the next lines count for the next job. Returns the old count."""
        old = self.count
        self.count = StreamCount()
        self._stream += 1
        return old

    @property
    def in_flight(self) -> int:
        return len(self._queue)
