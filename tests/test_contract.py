"""The wire contract rejects malformed payloads with a message that says what is wrong."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.contract import (
    ContractError,
    Envelope,
    Topics,
    decode_ack,
    decode_sim_tap,
    decode_status,
)
from gateway.uids import normalise_uid


def good() -> dict:
    return Envelope.new(node="laser-1", seq=1, boot="b", type="tap", data={"x": 1}).to_dict()


def test_round_trip() -> None:
    env = Envelope.new(node="laser-1", seq=7, boot="b", type="tap", data={"uid": "AB"})
    assert Envelope.decode(env.encode()) == env


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.pop("id"), "missing field 'id'"),
    (lambda d: d.update(seq="7"), "field 'seq' should be int"),
    (lambda d: d.update(seq=True), "field 'seq' should be int"),
    (lambda d: d.update(seq=0), "seq must be >= 1"),
    (lambda d: d.update(v=99), "unsupported contract version 99"),
    (lambda d: d.update(time="yesterday"), "is not an ISO 8601 time"),
    (lambda d: d.update(time="2026-11-25T10:00:00"), "has no timezone"),
    (lambda d: d.update(data=[1]), "field 'data' should be dict"),
    (lambda d: d.update(node=""), "must not be empty"),
])
def test_malformed_envelopes_say_why(mutate, message: str) -> None:
    d = good()
    mutate(d)
    with pytest.raises(ContractError, match=message.replace("(", r"\(")):
        Envelope.decode(json.dumps(d))


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


@pytest.mark.parametrize(("raw", "uid"), [
    ("de:ad:be:ef", "DEADBEEF"), ("0xDEADBEEF", "DEADBEEF"), (" 04 a1 ce 01 ", "04A1CE01"),
    ("04-11-22-33-44-55-66", "04112233445566"),
])
def test_uids_are_normalised(raw: str, uid: str) -> None:
    assert normalise_uid(raw) == uid


@pytest.mark.parametrize("raw", ["", "XYZ12345", "ABC", "DEADBEE", "00" * 11])
def test_bad_uids_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="not a badge UID"):
        normalise_uid(raw)
