"""The GRBL relay's bookkeeping, against a model controller (pure, hypothesis).

The model answers forwarded lines in order, one reply per line, whenever the test lets
it; the properties are those a sender depends on: one reply per line it sent, in its
order, refused lines never at the controller, and status reports it asked for never
withheld.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.policies.gcode import classify
from gateway.policies.grbl_relay import REFUSAL, GrblRelay, is_realtime

ALLOWED = ["G21", "G90", "$G", "$$", "F100", "(note)", ""]
MOTION = ["G1 X1", "G0 Y2", "M3 S100", "$J=X1F10"]


def _relay(session: bool) -> GrblRelay:
    relay = GrblRelay(poll_interval=0.25, answer_timeout=2.0, session_open=session)
    relay.connect()
    return relay


def _lines(data: bytes) -> list[bytes]:
    """The controller's view: the lines it received (non-real-time bytes, split at EOL)."""
    out, cur = [], bytearray()
    for b in data:
        if is_realtime(b):
            continue
        if b in (0x0A, 0x0D):
            out.append(bytes(cur))
            cur.clear()
        else:
            cur.append(b)
    return out


def _replies(data: bytes) -> list[str]:
    return [
        line for line in data.decode().split("\r\n") if line == "ok" or line.startswith("error:")
    ]


@given(
    lines=st.lists(st.sampled_from(ALLOWED + MOTION), min_size=1, max_size=30),
    session=st.booleans(),
    answers=st.lists(st.integers(0, 4), min_size=1, max_size=10),
    chunk=st.integers(1, 7),
)
def test_every_line_gets_one_reply_in_order(
    lines: list[str], session: bool, answers: list[int], chunk: int
) -> None:
    relay = _relay(session)
    stream = b"".join(line.encode() + b"\n" for line in lines)
    at_controller = bytearray()
    to_sender = bytearray()
    answered = 0  # lines the model controller has answered
    for n, i in enumerate(range(0, len(stream), chunk)):  # the sender's bytes in chunks
        out = relay.from_sender(stream[i : i + chunk], now=0.0)
        at_controller += out.to_controller
        to_sender += out.to_sender
        # The controller answers some of what it has, late, like behind a full planner.
        for _ in range(answers[n % len(answers)]):
            if answered < len(_lines(bytes(at_controller))):
                to_sender += relay.from_controller(b"ok\r\n", now=0.0)
                answered += 1
    while answered < len(_lines(bytes(at_controller))):
        to_sender += relay.from_controller(b"ok\r\n", now=0.0)
        answered += 1
    allowed = [session or not classify(line).needs_session for line in lines]
    assert _replies(bytes(to_sender)) == ["ok" if ok else "error:9" for ok in allowed]
    sent = [line.decode() for line in _lines(bytes(at_controller))]
    assert sent == [line for line, ok in zip(lines, allowed, strict=True) if ok]
    assert relay.in_flight == 0
    assert to_sender.count(REFUSAL) == allowed.count(False)


@given(st.lists(st.sampled_from(["sender?", "node", "merged", "one"]), max_size=80))
def test_reports_the_sender_asked_for_are_never_withheld(steps: list[str]) -> None:
    """However the node's and the sender's `?` interleave, and whichever GRBL merges,
    the sender never gets more reports than it asked for, and gets every one it asked
    for once reports keep coming."""
    relay = _relay(session=False)
    now = 0.0
    asked = got = 0
    outstanding = 0  # `?` the model controller has not answered yet

    def report() -> None:
        nonlocal got
        got += bool(relay.from_controller(b"<Idle|MPos:0.000,0.000,0.000>\r\n", now))

    for step in steps:
        now += 0.1
        if step == "sender?" and asked - got < 8:
            relay.from_sender(b"?", now)
            asked += 1
            outstanding += 1
        elif step == "node":
            now += 0.3  # a poll interval of silence
            outstanding += relay.poll_due(now)
        elif step == "merged" and outstanding:
            outstanding = 0  # GRBL answered every `?` so far with one report
            report()
        elif step == "one" and outstanding:
            outstanding -= 1
            report()
        assert got <= asked
    for _ in range(2 * asked + 2):  # the node keeps polling; reports keep coming
        now += 0.3
        if relay.poll_due(now) or outstanding:
            outstanding = 0
            report()
    assert got == asked


def test_the_node_polls_only_when_nobody_asked_for_a_poll_interval() -> None:
    relay = _relay(session=False)
    assert relay.poll_due(0.0)
    relay.from_controller(b"<Idle>\r\n", 0.01)
    relay.from_sender(b"?", 0.2)
    assert not relay.poll_due(0.3)  # the sender asked 0.1 s ago
    assert relay.poll_due(0.45)


def test_a_report_answering_the_node_is_kept_from_the_sender() -> None:
    relay = _relay(session=False)
    assert relay.poll_due(1.0)
    assert relay.from_controller(b"<Run|MPos:1,0,0>\r\n", 1.01) == b""
    relay.from_sender(b"?", 1.1)
    assert relay.from_controller(b"<Run|MPos:2,0,0>\r\n", 1.11) == b"<Run|MPos:2,0,0>\r\n"
    # Nobody asked: an auto-report passes.
    assert relay.from_controller(b"<Run|MPos:3,0,0>\r\n", 1.2) != b""


def test_orphans_of_a_sender_that_left_are_swallowed() -> None:
    relay = _relay(session=True)
    relay.from_sender(b"G1 X1\nG1 X2\n", 0.0)
    relay.disconnect()
    relay.connect()
    relay.from_sender(b"G21\n", 0.1)
    out = b"".join(relay.from_controller(b"ok\r\n", 0.2) for _ in range(3))
    assert out == b"ok\r\n"


def test_a_banner_empties_the_queue_and_counts_lines_per_job() -> None:
    relay = _relay(session=True)
    relay.from_sender(b"(Logo)\n; lines: 4\nG1 X1\nG1 X2\n", 0.0)
    relay.from_controller(b"ok\r\n", 0.1)
    relay.from_controller(b"ok\r\n", 0.1)
    relay.from_controller(b"ok\r\n", 0.1)
    assert (relay.count.name, relay.count.sent, relay.count.acked) == ("Logo", 2, 1)
    assert relay.count.percent == 25.0
    relay.from_controller(b"Grbl 1.1h ['$' for help]\r\n", 0.2)
    assert relay.in_flight == 0
    old = relay.new_stream()
    assert old.total == 4 and relay.count.sent == 0


def test_a_line_begun_in_a_session_is_finished_after_it() -> None:
    relay = _relay(session=True)
    out = relay.from_sender(b"G1 X", 0.0)
    assert out.to_controller == b"G1 X"  # in a session, bytes pass straight on
    relay.session_open = False
    out = relay.from_sender(b"5\nG1 X6\n", 0.1)
    assert out.to_controller == b"5\n"  # the next line is judged, and refused
    assert out.to_sender == b""  # its refusal waits for the first line's ok
    assert relay.from_controller(b"ok\r\n", 0.2) == b"ok\r\n" + REFUSAL
