"""The wire contract rejects malformed payloads with a message that says what is wrong.

Two families: the envelope and status bounds (size before parsing, depth without
recursion, UTF-8, finite numbers in range) and the typed event data. Property tests
check that no payload, however odd, makes a decoder raise anything but ContractError,
and that every type survives encode -> decode unchanged.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.contract import (
    EVENT_CLASSES,
    MAX_NODE_MESSAGE_BYTES,
    BadgeEnrolled,
    CertificationGranted,
    ContractError,
    Envelope,
    EnvelopeError,
    Job,
    NodeBoot,
    NodeStatus,
    SessionEnded,
    SessionStarted,
    SnapshotRejectedEvent,
    StaffPresence,
    Tap,
    Topics,
    decode_ack,
    decode_event,
    decode_sim_tap,
    decode_status,
    encode_status,
    loads_object,
    tap_reasons,
)
from gateway.contract.fields import (
    Flag,
    Id,
    Integer,
    Message,
    Nested,
    Number,
    OneOf,
    Rule,
    Text,
    Time,
    Token,
    Uid,
)
from gateway.core.clock import iso
from gateway.core.ids import normalise_uid
from gateway.policies.access import Reason

T0 = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)


def good() -> dict:
    return Envelope.new(node="laser-1", seq=1, boot="b", type="tap", data={"x": 1}).to_dict()


def test_round_trip() -> None:
    env = Envelope.new(node="laser-1", seq=7, boot="b", type="tap", data={"uid": "AB"})
    assert Envelope.decode(env.encode()) == env


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("id"), "missing field 'id'"),
        (lambda d: d.update(seq="7"), "field 'seq' should be integer from 1, got '7'"),
        (lambda d: d.update(seq=True), "field 'seq' should be integer from 1, got True"),
        (lambda d: d.update(seq=0), "field 'seq' should be integer from 1, got 0"),
        (lambda d: d.update(seq=2**70), "field 'seq' should be integer from 1, got 1180591620"),
        (lambda d: d.update(v=99), "unsupported contract version 99"),
        (lambda d: d.update(time="yesterday"), "is not an ISO 8601 time"),
        (lambda d: d.update(time="2026-11-25T10:00:00"), "has no timezone"),
        (lambda d: d.update(time="0001-01-01T00:00:00+01:00"), "is out of range"),
        (lambda d: d.update(data=[1]), "field 'data' should be an object, got list"),
        (lambda d: d.update(node=""), "field 'node' should be id, got ''"),
        (lambda d: d.update(node="a/b"), "field 'node' should be id"),
        (lambda d: d.update(type="Session Ended"), "field 'type' should be word"),
        (lambda d: d.update(id="x" * 65), "field 'id' should be id"),
    ],
)
def test_malformed_envelopes_say_why(mutate, message: str) -> None:
    d = good()
    mutate(d)
    with pytest.raises(ContractError, match=message.replace("(", r"\(")):
        Envelope.decode(json.dumps(d))


def test_an_envelope_with_a_readable_id_may_be_acknowledged() -> None:
    d = good()
    d["seq"] = 2**70
    with pytest.raises(EnvelopeError) as err:
        Envelope.decode(json.dumps(d))
    assert err.value.event_id == d["id"]
    # An unsupported version is kept for a hub that understands it: not acknowledged.
    d = good()
    d["v"] = 2
    with pytest.raises(EnvelopeError) as err:
        Envelope.decode(json.dumps(d))
    assert err.value.event_id is None


@pytest.mark.parametrize(
    ("payload", "event_id"),
    [
        (b'{"v":1,"id":"e-1","seq":NaN}', "e-1"),
        (b'{"v":1,"id":"e-1","seq":1e400}', "e-1"),
        (b'{"v":1,"id":"e-1","data":{"uid":"\xff"}}', "e-1"),
        (b'{"v":2,"id":"e-1","seq":NaN}', None),  # a newer version: kept for a newer hub
        (b'{"v":true,"id":"e-1","seq":NaN}', None),
        (b'{"v":1,"id":"not an id","seq":NaN}', None),
        (b"[" * 60_000, None),
    ],
)
def test_the_id_of_an_unparsable_envelope_is_salvaged_for_its_ack(
    payload: bytes, event_id: str | None
) -> None:
    with pytest.raises(EnvelopeError) as err:
        Envelope.decode(payload)
    assert err.value.event_id == event_id


# -- bounds before and while parsing --------------------------------------------------

POISON = {
    "over-size": b'{"v":1,"pad":"' + b"x" * MAX_NODE_MESSAGE_BYTES + b'"}',
    "100,000 [": b"[" * 100_000,
    "60,000 [ (under the size bound)": b"[" * 60_000,
    "deep but short": b'{"v":1,"data":{"a":{"b":{"c":1}}}}',
    "NaN": b'{"v":1,"seq":NaN}',
    "Infinity": b'{"v":1,"seq":Infinity}',
    "-Infinity": b'{"v":1,"seq":-Infinity}',
    "1e400 overflows": b'{"v":1,"seq":1e400}',
    "a 5000-digit integer": b'{"v":1,"seq":' + b"9" * 5000 + b"}",
    "invalid UTF-8": b'{"v":1,"id":"\xff\xfe"}',
    "UTF-16": json.dumps({"v": 1}).encode("utf-16"),
    "lone surrogate": b'{"v":1,"id":"\\ud800"}',
    "not an object": b"[1, 2]",
}


@pytest.mark.parametrize("name", sorted(POISON))
def test_poison_payloads_are_one_contract_error(name: str) -> None:
    payload = POISON[name]
    for decode in (Envelope.decode, NodeStatus.decode):
        with pytest.raises(ContractError):
            decode(payload)


def test_size_is_checked_on_the_raw_bytes_before_parsing() -> None:
    with pytest.raises(ContractError, match=r"65537 bytes, more than the 65536 allowed"):
        Envelope.decode(b" " * (MAX_NODE_MESSAGE_BYTES + 1))


def test_deep_nesting_never_recurses() -> None:
    # Even without a size bound, a deep payload is refused by the scan, not by Python's
    # recursion limit.
    for payload in (b"[" * 1_000_000, b'{"a":' * 200_000):
        with pytest.raises(ContractError, match="nested deeper than 32 levels"):
            loads_object(payload, "x")
    # Brackets inside strings do not count, escaped quotes do not end a string.
    text = json.dumps({"a": '[[[[[[[[{{{{\\"[[[[', "b": {"c": 1}})
    assert loads_object(text, "x", max_depth=2)["b"] == {"c": 1}


def test_numbers_are_finite_and_counts_fit_sqlite() -> None:
    assert loads_object(b'{"a": 1.5e3, "b": -2}', "x") == {"a": 1500.0, "b": -2}
    with pytest.raises(ContractError, match="too large a number"):
        loads_object(b'{"a": -1e999}', "x")


@pytest.mark.parametrize("payload", [b"", b"\xff\xfe", b"[1,2]", b"null", b"{", b'"x"'])
def test_garbage_is_a_contract_error(payload: bytes) -> None:
    with pytest.raises(ContractError):
        Envelope.decode(payload)
    with pytest.raises(ContractError):
        decode_ack(payload)
    with pytest.raises(ContractError):
        decode_status(payload)
    with pytest.raises(ContractError):
        decode_sim_tap(payload)


@given(st.binary(max_size=200))
def test_no_byte_string_crashes_the_decoders(payload: bytes) -> None:
    for decode in (Envelope.decode, decode_ack, decode_status, decode_sim_tap):
        with contextlib.suppress(ContractError):
            decode(payload)


def test_ack_ids_must_be_strings() -> None:
    assert decode_ack(b'{"v":1,"ids":["a","b"]}') == ["a", "b"]
    with pytest.raises(ContractError, match="every id must be a string"):
        decode_ack(b'{"v":1,"ids":["a",2]}')


def test_topics() -> None:
    t = Topics("fablab/demo")
    assert t.node_events("laser-1") == "fablab/demo/node/laser-1/event"
    assert t.snapshot("laser-1") == "fablab/demo/machine/laser-1/snapshot"
    assert t.node_from_topic("fablab/demo/node/cnc-1/status") == "cnc-1"
    with pytest.raises(ContractError):
        t.node_from_topic("fablab/other/node/cnc-1/status")


@pytest.mark.parametrize(
    ("raw", "uid"),
    [
        ("de:ad:be:ef", "DEADBEEF"),
        ("0xDEADBEEF", "DEADBEEF"),
        (" 04 a1 ce 01 ", "04A1CE01"),
        ("04-11-22-33-44-55-66", "04112233445566"),
    ],
)
def test_uids_are_normalised(raw: str, uid: str) -> None:
    assert normalise_uid(raw) == uid


@pytest.mark.parametrize("raw", ["", "XYZ12345", "ABC", "DEADBEE", "00" * 11])
def test_bad_uids_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="not a badge UID"):
        normalise_uid(raw)


# -- typed event data -------------------------------------------------------------------

# What the node (gateway/node/) sends today, type by type (built the way it builds them).
NODE_DATA: dict[str, dict[str, Any]] = {
    "tap": {
        "uid": "04A1CE01",
        "member_id": "m-alice",
        "action": "start",
        "reason": "allowed",
        "tap_id": None,
        "certify_mode": False,
    },
    "session.started": {
        "session_id": "5f0c5a40-9a0e-4d3e-8a4e-0b0b0b0b0b0b",
        "machine": "laser-1",
        "member_id": "m-alice",
        "badge_uid": "04A1CE01",
        "project_id": "p-lampe",
        "started_at": iso(T0),
        "staff_present": False,
    },
    "session.ended": {
        "session_id": "s-1",
        "machine": "laser-1",
        "member_id": "m-alice",
        "badge_uid": "04A1CE01",
        "project_id": None,
        "started_at": iso(T0),
        "ended_at": iso(T0 + timedelta(seconds=125.5)),
        "duration_s": 125.5,
        "billable_minutes": 3,
        "end_reason": "badge_out",
        "busy_s": None,
        "idle_s": None,
        "busy_minutes": None,
        "idle_minutes": None,
        "jobs": 0,
        "material_g": None,
    },
    "job": {
        "job_id": "j-1",
        "event": "progress",
        "session_id": "s-1",
        "machine": "laser-1",
        "member_id": "m-alice",
        "project_id": None,
        "name": "box.gcode",
        "progress": 42.0,
        "time_left_s": 600,
        "material_g": 3.7,
        "detail": "",
    },
    "staff.presence": {
        "member_id": "m-karim",
        "present": True,
        "until": iso(T0 + timedelta(hours=4)),
    },
    "badge.enrolled": {"request_id": "r-1", "uid": "0A0B0C0D", "member_id": "m-bruno"},
    "certification.granted": {
        "trainer_id": "m-karim",
        "member_id": "m-bruno",
        "group": "laser",
        "level": 2,
        "machine": "laser-1",
    },
    "node.boot": {"version": "0.1.0", "recovered_session_id": None, "relay": False},
    "snapshot.rejected": {"reason": "forged", "detail": "the signature does not match"},
}


@pytest.mark.parametrize("type_", sorted(EVENT_CLASSES))
def test_what_the_node_sends_today_decodes_and_encodes_back_unchanged(type_: str) -> None:
    data = NODE_DATA[type_]
    event = decode_event(type_, data)
    assert isinstance(event, EVENT_CLASSES[type_])
    assert type_ == event.TYPE
    assert event.to_data() == data


def test_each_type_has_a_constructor() -> None:
    e = SessionEnded(
        session_id="s-1",
        machine="laser-1",
        member_id="m-alice",
        badge_uid="04A1CE01",
        started_at=T0,
        ended_at=T0 + timedelta(seconds=61),
        duration_s=61.0,
        billable_minutes=2,
        end_reason="badge_out",
    )
    assert e.to_data()["ended_at"] == iso(T0 + timedelta(seconds=61))
    assert decode_event("session.ended", e.to_data()) == e
    for event in (
        Tap(uid="04A1CE01", member_id=None, action="deny", reason="unknown_badge"),
        SessionStarted(session_id="s", machine="m", member_id="x", badge_uid=None, started_at=T0),
        Job(job_id="j", event="started", machine="m"),
        StaffPresence(member_id="x", present=False),
        BadgeEnrolled(request_id="r", uid="0A0B0C0D"),
        CertificationGranted(trainer_id="t", member_id="x", group="g", level=1, machine="m"),
        NodeBoot(version="1"),
        SnapshotRejectedEvent(reason="older"),
    ):
        assert decode_event(event.TYPE, json.loads(json.dumps(event.to_data()))) == event


def test_special_taps_gain_certify_mode_false() -> None:
    special = {
        "uid": "0A0B0C0D",
        "member_id": None,
        "action": "enrol",
        "reason": "enrolment",
        "tap_id": None,
    }
    assert decode_event("tap", special).to_data() == {**special, "certify_mode": False}


def test_unknown_types_are_not_decoded() -> None:
    assert decode_event("firmware.updated", {"anything": [1, 2]}) is None


@pytest.mark.parametrize(
    ("type_", "change", "message"),
    [
        ("session.ended", {"duration_s": 1e300}, "field 'duration_s' should be number from 0 to"),
        ("session.ended", {"duration_s": -1}, "field 'duration_s'"),
        ("session.ended", {"duration_s": 7 * 86400 + 1}, "field 'duration_s'"),
        ("session.ended", {"duration_s": "long"}, "field 'duration_s'"),
        ("session.ended", {"end_reason": "because"}, "field 'end_reason' should be one of"),
        ("session.ended", {"jobs": True}, "field 'jobs'"),
        ("session.ended", {"started_at": "yesterday"}, "field 'started_at'"),
        ("session.started", {"machine": None}, "field 'machine' should be id, got None"),
        ("session.started", {"session_id": {"nested": 1}}, "field 'session_id'"),
        ("tap", {"action": "explode"}, "field 'action' should be one of start, end, deny"),
        ("tap", {"reason": "because"}, "field 'reason' should be a tap reason"),
        ("tap", {"uid": "not hex"}, "field 'uid' should be badge uid"),
        ("tap", {"member_id": "\ud800"}, "field 'member_id'"),
        ("job", {"progress": 150}, "field 'progress' should be number from 0 to 100"),
        ("job", {"event": "exploded"}, "field 'event'"),
        ("job", {"name": "x" * 1025}, "field 'name' should be text of at most 1024"),
        ("job", {"detail": "nul\0byte"}, "field 'detail'"),
        ("staff.presence", {"present": "yes"}, "field 'present' should be true or false"),
        ("certification.granted", {"level": 3}, "field 'level' should be integer from 1 to 2"),
        ("snapshot.rejected", {"reason": "bored"}, "field 'reason'"),
    ],
)
def test_bad_event_data_names_the_field(type_: str, change: dict, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        decode_event(type_, {**NODE_DATA[type_], **change})


def test_a_missing_required_field_is_named() -> None:
    data = dict(NODE_DATA["session.ended"])
    del data["duration_s"]
    with pytest.raises(ContractError, match="session.ended data: missing field 'duration_s'"):
        decode_event("session.ended", data)


def test_deny_reasons_come_from_the_access_policy() -> None:
    assert {str(r) for r in Reason} <= set(tap_reasons())
    for reason in Reason:
        assert decode_event("tap", {**NODE_DATA["tap"], "reason": str(reason)}).reason == reason


# -- node status --------------------------------------------------------------------------


def test_status_round_trip_with_the_fields_newer_nodes_send() -> None:
    payload = encode_status(
        node="laser-1",
        machine="laser-1",
        online=True,
        relay=True,
        session={
            "session_id": "s-1",
            "member_id": "m-alice",
            "member_name": "Alice",
            "project_id": None,
            "started_at": iso(T0),
        },
        snapshot_version=42,
        boot="b-1",
        state="in_use",
        activity="busy",
        detail="",
        job={"job_id": "j-1", "name": None, "paused": False, "progress": 42.0, "session_id": "s-1"},
        heartbeat_s=15,
        clock_behind=False,
        journal="unavailable",
        backlog=3,
        time=T0,
    )
    status = NodeStatus.decode(payload)
    assert (status.heartbeat_s, status.clock_behind, status.journal, status.backlog) == (
        15.0,
        False,
        "unavailable",
        3,
    )
    assert status.session is not None and status.session.member_name == "Alice"
    assert status.job is not None and status.job.progress == 42.0
    assert NodeStatus.decode(status.encode()) == status
    assert json.loads(status.encode()) == json.loads(payload)


def test_a_status_without_the_new_fields_leaves_them_out() -> None:
    obj = json.loads(encode_status(node="a", machine="a", online=False))
    assert not {"heartbeat_s", "clock_behind", "journal", "backlog"} & set(obj)
    assert json.loads(NodeStatus.decode(json.dumps(obj)).encode()) == obj


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"heartbeat_s": 0}, "field 'heartbeat_s' should be number above 0, at most 3600"),
        ({"heartbeat_s": 3601}, "field 'heartbeat_s'"),
        ({"journal": "full"}, "field 'journal' should be one of ok, unavailable"),
        ({"backlog": -1}, "field 'backlog' should be integer from 0"),
        ({"clock_behind": "no"}, "field 'clock_behind'"),
        ({"online": "yes"}, "field 'online' should be true or false"),
        ({"session": []}, "field 'session' should be object"),
        ({"session": {"member_id": "m"}}, "status session: missing field 'session_id'"),
        ({"activity": "dancing"}, "field 'activity'"),
        ({"snapshot_version": 2**64}, "field 'snapshot_version'"),
        ({"job": {"job_id": "j", "progress": float("nan")}}, "NaN"),
    ],
)
def test_bad_status_names_the_field(change: dict, message: str) -> None:
    obj = {**json.loads(encode_status(node="a", machine="a", online=True)), **change}
    with pytest.raises(ContractError, match=message):
        NodeStatus.decode(json.dumps(obj))


# -- properties ------------------------------------------------------------------------


def _strategy(rule: Rule) -> st.SearchStrategy[Any]:
    spec = rule.spec
    if isinstance(spec, Id):
        base: st.SearchStrategy[Any] = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,20}\Z")
    elif isinstance(spec, Token):
        base = st.from_regex(r"\A[a-z][a-z0-9._-]{0,10}\Z")
    elif isinstance(spec, Text):
        base = st.text(
            st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
            max_size=min(spec.max_len, 40),
        )
    elif isinstance(spec, Uid):
        base = st.binary(min_size=4, max_size=10).map(lambda b: b.hex().upper())
    elif isinstance(spec, Time):
        base = st.datetimes(
            min_value=datetime(1971, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)
        ).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
    elif isinstance(spec, Flag):
        base = st.booleans()
    elif isinstance(spec, Number):
        base = st.floats(spec.lo, spec.hi, exclude_min=spec.lo_open, allow_nan=False)
    elif isinstance(spec, Integer):
        base = st.integers(spec.lo, spec.hi)
    elif isinstance(spec, OneOf):
        base = st.sampled_from(spec.values)
    elif isinstance(spec, Nested):
        base = messages(spec.cls)
    else:  # pragma: no cover - a new spec needs a strategy here
        raise AssertionError(f"no strategy for {spec!r}")
    return st.one_of(st.none(), base) if rule.nullable else base


def messages(cls: type[Message]) -> st.SearchStrategy[Message]:
    return st.builds(cls, **{name: _strategy(rule) for name, rule in cls.rules()})


@pytest.mark.parametrize("type_", sorted(EVENT_CLASSES))
@given(data=st.data())
def test_every_event_type_round_trips(type_: str, data: st.DataObject) -> None:
    event = data.draw(messages(EVENT_CLASSES[type_]))
    wire = json.loads(json.dumps(event.to_data()))
    assert decode_event(type_, wire) == event


@given(messages(NodeStatus))
def test_the_status_round_trips(status: Message) -> None:
    assert isinstance(status, NodeStatus)
    assert NodeStatus.decode(status.encode()) == status


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


@pytest.mark.parametrize("type_", sorted(EVENT_CLASSES))
@given(data=st.data())
def test_arbitrary_data_only_ever_raises_contract_errors(type_: str, data: st.DataObject) -> None:
    base = dict(NODE_DATA[type_])
    for key in data.draw(st.lists(st.sampled_from(sorted(base)), max_size=3)):
        base[key] = data.draw(JSON)
    if data.draw(st.booleans()):
        base = data.draw(JSON)
    env = {**good(), "type": type_, "data": base}
    with contextlib.suppress(ContractError):
        Envelope.decode(_dumps(env)).event()


@given(data=st.data())
def test_arbitrary_envelopes_and_statuses_only_ever_raise_contract_errors(
    data: st.DataObject,
) -> None:
    env = good()
    status = json.loads(encode_status(node="a", machine="a", online=True))
    for obj in (env, status):
        for key in data.draw(st.lists(st.sampled_from(sorted(obj)), max_size=3)):
            obj[key] = data.draw(JSON)
    with contextlib.suppress(ContractError):
        Envelope.decode(_dumps(env)).event()
    with contextlib.suppress(ContractError):
        NodeStatus.decode(_dumps(status))
    with contextlib.suppress(ContractError):
        NodeStatus.decode(_dumps(data.draw(JSON)))
