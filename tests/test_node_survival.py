"""A node that survives: its loop owns its state, a full or unusable journal, a wrong clock,
crafted snapshots, and errors in its own threads.

The agent runs in-process on a real journal file with gpiozero mock pins and injected
clocks; a full disk is played either by a real full tmpfs (as root) or by a SQLite
connection whose writes fail the way SQLite does on SQLITE_FULL. The status and
thread-ownership tests use a real Mosquitto.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from gateway.config import NodeConfig
from gateway.contract import encode_ack, encode_enrolment, encode_sim_tap
from gateway.contract.signing import (
    MAX_SNAPSHOT_BYTES,
    SnapshotRejected,
    generate_key,
    sign_snapshot,
    verify_snapshot,
)
from gateway.core.clock import iso
from gateway.core.snapshot import Snapshot
from gateway.drivers.readers.simulated import SimulatedReader
from gateway.drivers.relay import GpioRelay
from gateway.node import Journal, NodeAgent
from tests.support.builders import ALICE, PIN, T0, grant, node_config
from tests.support.builders import snapshot as base_snapshot
from tests.support.clock import FakeClock
from tests.support.harness import Observer, poll_until
from tests.support.mosquitto import MosquittoProcess
from tests.test_node_agent import deliver, events, pin_state, tap

YEAR = timedelta(days=365)
CAROL, DAVE = "04CA7011", "04DA7E00"


# --------------------------------------------------------------------------- set-up


@pytest.fixture
def key():
    return generate_key()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def node_cfg(journal: Path, url: str = "mqtt://127.0.0.1:1883") -> NodeConfig:
    return node_config(journal, url, reconnect_min=0.1, reconnect_max=0.5)


@pytest.fixture
def cfg(tmp_path: Path) -> NodeConfig:
    return node_cfg(tmp_path / "journal.db")


def make(
    cfg: NodeConfig,
    key,
    clock: FakeClock,
    pins: MockFactory,
    *,
    journal: Journal | None = None,
    connect: bool = False,
) -> NodeAgent:
    return NodeAgent(
        cfg,
        relay=GpioRelay(PIN, pin_factory=pins),
        reader=SimulatedReader(),
        public_key=key.public_key(),
        journal=journal,
        mono=clock.mono,
        wall=clock.wall,
        connect=connect,
    )


@pytest.fixture
def agents() -> Iterator[list[NodeAgent]]:
    """Agents a test made, closed at the end (relay off, journal closed)."""
    made: list[NodeAgent] = []
    yield made
    for a in made:
        a.relay.close()
        a.journal.close()


def snapshot(version: int = 1, *, issued: datetime = T0, **kw) -> Snapshot:
    """Alice's certification ends an hour after issue, Carol's membership on issue day."""
    snap = base_snapshot(version, issued=issued, **kw)
    members = {
        **snap.members,
        "alice": grant("alice", cert_expires=issued + timedelta(hours=1)),
        "carol": grant("carol", membership_end=issued.date()),
        "dave": grant(
            "dave", cert_expires=issued + 4 * YEAR, membership_end=(issued + 4 * YEAR).date()
        ),
    }
    return replace(snap, badges={**snap.badges, CAROL: "carol", DAVE: "dave"}, members=members)


def last_tap(cfg: NodeConfig) -> dict:
    return [e["data"] for e in events(cfg) if e["type"] == "tap"][-1]


# --------------------------------------------------------------------------- thread ownership


def test_mqtt_handlers_change_nothing_until_the_next_step(
    cfg, key, clock, mock_pins, agents
) -> None:
    a = make(cfg, key, clock, mock_pins)
    agents.append(a)
    deliver(a.on_snapshot, sign_snapshot(snapshot(1), key))
    pending = [p.id for p in a.journal.pending()]
    until = clock.wall() + timedelta(seconds=30)

    def paho_thread() -> None:
        a.on_snapshot("t", sign_snapshot(snapshot(2), key))
        a.on_ack("t", encode_ack(pending[:1]))
        a.on_enrolment("t", encode_enrolment("req-1", "alice", iso(until)))
        a.on_sim_tap("t", encode_sim_tap(DAVE, "tap-1"))

    t = threading.Thread(target=paho_thread)
    t.start()
    t.join()
    assert a.trust.snapshot is not None and a.trust.snapshot.version == 1
    assert [p.id for p in a.journal.pending()] == pending
    assert a.certify.enrolment is None and a.sessions.current is None and not pin_state(mock_pins)

    a.step()  # the loop handles them, in order, then the simulated tap in the same step
    assert a.trust.snapshot.version == 2
    assert pending[0] not in [p.id for p in a.journal.pending()]
    assert a.certify.enrolment is not None and a.certify.enrolment["request_id"] == "req-1"
    assert a.sessions.current is not None and a.sessions.current.member_id == "dave"
    assert pin_state(mock_pins)
    assert last_tap(cfg)["tap_id"] == "tap-1"


@pytest.mark.integration
def test_statuses_leave_from_the_loop_in_order_and_every_heartbeat(
    tmp_path, key, clock, mock_pins, mosquitto: MosquittoProcess, agents
) -> None:
    cfg = node_cfg(tmp_path / "journal.db", mosquitto.url)
    obs = Observer(mosquitto.url, "fablab/test/")
    a = make(cfg, key, clock, mock_pins, connect=True)
    agents.append(a)
    published: list[tuple[int, dict]] = []
    assert a.link is not None
    real_publish = a.link.publish

    def spy(topic: str, payload: bytes, **kw):
        if topic.endswith("/status"):
            published.append((threading.get_ident(), json.loads(payload)))
        return real_publish(topic, payload, **kw)

    a.link.publish = spy  # type: ignore[method-assign]
    try:
        a.start()
        # paho reports the connection on its own thread; the loop publishes the status.
        poll_until(lambda: (a.step(), obs.status.get("laser-1"))[1], what="first status")
        deliver(a.on_snapshot, sign_snapshot(snapshot(1), key))
        tap(a, DAVE)
        assert a.sessions.current is not None
        session_id = a.sessions.current.session_id
        mark = len(published)

        def paho_thread() -> None:
            a.on_snapshot("t", sign_snapshot(snapshot(2), key))
            a.on_connect()
            a.on_ack("t", encode_ack([]))

        t = threading.Thread(target=paho_thread)
        t.start()
        t.join()
        assert len(published) == mark  # nothing left from that thread
        a.step()
        after = [s for _, s in published[mark:]]
        assert after and all(
            s["state"] == "in_use" and s["session"]["session_id"] == session_id for s in after
        )
        assert {tid for tid, _ in published} == {threading.get_ident()}
        obs.wait_for(
            lambda: (
                obs.status["laser-1"]["snapshot_version"] == 2
                and obs.status["laser-1"]["state"] == "in_use"
            ),
            what="in_use, version 2",
        )

        # Nothing happens, yet the retained status is published again every heartbeat.
        tap(a, DAVE)
        n = len(published)
        a.step()
        assert len(published) == n
        clock.advance(cfg.heartbeat.total_seconds())
        a.step()
        assert len(published) == n + 1
        beat = published[-1][1]
        assert beat["heartbeat_s"] == 15.0 and beat["journal"] == "ok"
        assert beat["clock_behind"] is False and isinstance(beat["backlog"], int)
        assert beat["state"] == "free"
    finally:
        a.shutdown()
        obs.close()


# --------------------------------------------------------------------------- full journal

WRITES = ("INSERT", "UPDATE", "DELETE", "COMMIT")


class FullDisk:
    """Journal connections whose writes fail as SQLite's do on a full disk, while ``on``.

    As with the real SQLITE_FULL on COMMIT, the transaction is already rolled back when
    the error is raised (which is what used to hide it behind "cannot rollback").
    """

    def __init__(self) -> None:
        self.on = False

    def connect(self, path: Path) -> sqlite3.Connection:
        disk = self

        class Connection(sqlite3.Connection):
            def execute(self, sql: str, *args):  # type: ignore[override]
                verb = sql.lstrip().split(None, 1)[0].upper()
                if disk.on and verb in WRITES and (verb == "COMMIT" or not self.in_transaction):
                    if self.in_transaction:
                        super().execute("ROLLBACK")
                    raise sqlite3.OperationalError("database or disk is full")
                return super().execute(sql, *args)

        return sqlite3.connect(
            path, factory=Connection, check_same_thread=False, isolation_level=None
        )


def test_a_full_journal_cuts_the_session_denies_taps_and_recovers_by_itself(
    cfg, key, clock, mock_pins, agents, caplog
) -> None:
    caplog.set_level(logging.INFO)
    disk = FullDisk()
    a = make(cfg, key, clock, mock_pins, journal=Journal(cfg.journal, connect=disk.connect))
    agents.append(a)
    deliver(a.on_snapshot, sign_snapshot(snapshot(), key))
    tap(a, DAVE)
    clock.advance(16)
    a.step()  # heartbeat: the session's last recorded time is T0 + 16 s
    assert pin_state(mock_pins)

    disk.on = True
    clock.advance(16)
    a.step()  # the next heartbeat cannot be written: power off at once
    assert not pin_state(mock_pins) and a.sessions.current is None
    assert "database or disk is full" in caplog.text
    assert "cannot rollback" not in caplog.text
    tap(a, DAVE)
    assert not pin_state(mock_pins)
    assert "journal_unavailable" in caplog.text
    status = a.status()
    assert (status["journal"], status["relay"], status["state"]) == ("unavailable", False, "free")
    clock.advance(1.5)
    a.step()  # a retry while the disk is still full changes nothing
    assert a.status()["journal"] == "unavailable" and not pin_state(mock_pins)

    disk.on = False  # space returns
    clock.advance(JOURNAL_RETRY_WAIT)
    a.step()
    assert a.status()["journal"] == "ok"
    evs = events(cfg)
    ended = [e["data"] for e in evs if e["type"] == "session.ended"][-1]
    assert ended["end_reason"] == "journal_error"
    assert ended["duration_s"] == pytest.approx(16)
    assert ended["ended_at"] == iso(T0 + timedelta(seconds=16))
    denied = last_tap(cfg)
    assert (denied["uid"], denied["member_id"], denied["action"], denied["reason"]) == (
        DAVE,
        "dave",
        "deny",
        "journal_unavailable",
    )
    assert a.status()["backlog"] == len(evs)
    tap(a, DAVE)
    assert pin_state(mock_pins) and last_tap(cfg)["reason"] == "allowed"


JOURNAL_RETRY_WAIT = 30.0  # longer than the node's longest retry back-off


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (root only); lazily unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "fs"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"mount is not permitted here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


@pytest.mark.integration
def test_a_really_full_file_system_denies_taps_and_recovers(
    small_fs, key, clock, mock_pins, agents, caplog
) -> None:
    cfg = node_cfg(small_fs / "journal.db")
    a = make(cfg, key, clock, mock_pins)
    agents.append(a)
    deliver(a.on_snapshot, sign_snapshot(snapshot(), key))
    filler = fill(small_fs)
    tap(a, DAVE)
    assert not pin_state(mock_pins) and a.sessions.current is None
    assert a.status()["journal"] == "unavailable"
    assert "database or disk is full" in caplog.text and "cannot rollback" not in caplog.text

    filler.unlink()
    clock.advance(JOURNAL_RETRY_WAIT)
    a.step()
    assert a.status()["journal"] == "ok"
    assert last_tap(cfg)["reason"] == "journal_unavailable"
    tap(a, DAVE)
    assert pin_state(mock_pins)


# --------------------------------------------------------------------------- journal at start


def _file_in_the_way(journal: Path) -> Callable[[], None]:
    journal.parent.rmdir()
    journal.parent.write_text("not a directory")
    return journal.parent.unlink


def _read_only_mount(journal: Path) -> Callable[[], None]:
    subprocess.run(["mount", "-o", "remount,ro", str(journal.parent)], check=True)
    return lambda: subprocess.run(["mount", "-o", "remount,rw", str(journal.parent)], check=True)


def _no_write_permission(journal: Path) -> Callable[[], None]:
    journal.parent.chmod(0o500)
    journal.chmod(0o400)

    def undo() -> None:
        journal.parent.chmod(0o700)
        journal.chmod(0o600)

    return undo


@pytest.mark.parametrize(
    "blocker",
    [
        pytest.param(_file_in_the_way, id="directory-is-a-file"),
        pytest.param(_read_only_mount, id="read-only-mount"),
        pytest.param(_no_write_permission, id="no-write-permission"),
    ],
)
def test_a_journal_that_cannot_be_opened_at_start_does_not_stop_the_node(
    tmp_path, key, clock, mock_pins, agents, caplog, blocker
) -> None:
    if blocker is _read_only_mount:
        if os.geteuid() != 0:
            pytest.skip("remounting needs root")
        place = tmp_path / "fs"
        place.mkdir()
        if (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(place)],
                capture_output=True,
                check=False,
            ).returncode
            != 0
        ):
            pytest.skip("mount is not permitted here")
    else:
        place = tmp_path / "data"
        place.mkdir()
    if blocker is _no_write_permission and os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    cfg = node_cfg(place / "journal.db")
    try:
        if blocker is not _file_in_the_way:  # a journal that holds a snapshot already
            first = make(cfg, key, clock, mock_pins)
            deliver(first.on_snapshot, sign_snapshot(snapshot(), key))
            first.journal.close()
            first.relay.close()
        undo = blocker(cfg.journal)

        a = make(cfg, key, clock, mock_pins)
        agents.append(a)
        assert not pin_state(mock_pins)
        assert a.status()["journal"] == "unavailable"
        assert "journal unavailable" in caplog.text
        tap(a, DAVE)
        assert not pin_state(mock_pins)
        clock.advance(1.5)
        a.step()  # still blocked: the node keeps running, relay off
        assert a.status()["journal"] == "unavailable"

        undo()
        clock.advance(JOURNAL_RETRY_WAIT)
        a.step()
        assert a.status()["journal"] == "ok"
        boots = [e for e in events(cfg) if e["type"] == "node.boot"]
        assert boots[-1]["boot"] == a.boot  # this start, recorded once the journal opened
        assert last_tap(cfg)["reason"] == "journal_unavailable"
        if blocker is _file_in_the_way:  # nothing was held: a snapshot arrives later
            deliver(a.on_snapshot, sign_snapshot(snapshot(), key))
        tap(a, DAVE)
        assert pin_state(mock_pins)
    finally:
        if blocker is _read_only_mount:
            subprocess.run(["umount", "-l", str(place)], check=False)


# --------------------------------------------------------------------------- trusted time


def test_a_clock_set_back_a_year_revives_nothing_and_is_flagged(
    cfg, key, clock, mock_pins, agents, caplog
) -> None:
    a = make(cfg, key, clock, mock_pins)
    agents.append(a)
    deliver(a.on_snapshot, sign_snapshot(snapshot(), key))
    clock.advance(timedelta(hours=26).total_seconds())
    tap(a, ALICE)
    assert last_tap(cfg)["reason"] == "certification_expired"
    tap(a, CAROL)
    assert last_tap(cfg)["reason"] == "membership_expired"
    assert a.status()["clock_behind"] is False

    clock.wall_now -= YEAR  # someone sets the clock back (or a Pi boots without RTC)
    tap(a, ALICE)
    assert last_tap(cfg)["reason"] == "certification_expired"
    tap(a, CAROL)
    assert last_tap(cfg)["reason"] == "membership_expired"
    assert a.status()["clock_behind"] is True
    for _ in range(3):
        a.step()
    assert caplog.text.count("behind the time signed by the hub") == 1

    tap(a, DAVE)
    clock.advance(61)
    tap(a, DAVE)
    ended = [e["data"] for e in events(cfg) if e["type"] == "session.ended"][-1]
    assert ended["duration_s"] == pytest.approx(61)  # monotonic
    started = datetime.fromisoformat(ended["started_at"].replace("Z", "+00:00"))
    assert started >= T0 + timedelta(hours=26)  # never a year back


def test_a_clock_set_forward_a_year_keeps_a_fresh_snapshot_fresh(
    cfg, key, clock, mock_pins, agents
) -> None:
    a = make(cfg, key, clock, mock_pins)
    agents.append(a)
    deliver(a.on_snapshot, sign_snapshot(snapshot(), key))
    clock.wall_now += YEAR  # far past the snapshot's validity by the wall clock
    tap(a, DAVE)
    assert last_tap(cfg)["reason"] == "allowed" and pin_state(mock_pins)
    clock.advance(61)
    tap(a, DAVE)
    ended = [e["data"] for e in events(cfg) if e["type"] == "session.ended"][-1]
    assert ended["duration_s"] == pytest.approx(61)
    tap(a, ALICE)  # the wall clock ahead makes expiries earlier, never later
    assert last_tap(cfg)["reason"] == "certification_expired"
    assert a.status()["clock_behind"] is False
    clock.advance(timedelta(hours=72).total_seconds())  # old by the monotonic clock: stale
    tap(a, DAVE)
    assert last_tap(cfg)["reason"] == "snapshot_too_old"


def test_after_a_restart_with_the_clock_behind_the_recorded_floor_holds(
    cfg, key, clock, mock_pins, agents
) -> None:
    first = make(cfg, key, clock, mock_pins)
    deliver(first.on_snapshot, sign_snapshot(snapshot(), key))
    clock.advance(3600)
    tap(first, DAVE)
    clock.advance(20)
    first.step()  # the heartbeat records the session and the signed time bound
    first.journal.close()  # power cut
    mock_pins.reset()
    floor = T0 + timedelta(seconds=3620)

    clock.wall_now = floor - YEAR  # a Pi without RTC boots with an old time
    clock.mono_now = 3.0  # a new boot: the monotonic clock starts again
    second = make(cfg, key, clock, mock_pins)
    agents.append(second)
    assert second.trust.now() == floor
    assert second.status()["clock_behind"] is True
    tap(second, DAVE)  # how long was the node off? unknown: the held snapshot is stale
    assert last_tap(cfg)["reason"] == "snapshot_too_old" and not pin_state(mock_pins)
    clock.wall_now = floor + timedelta(minutes=5)  # NTP sets the clock right
    tap(second, DAVE)
    assert last_tap(cfg)["reason"] == "allowed" and pin_state(mock_pins)
    assert second.status()["clock_behind"] is False


# --------------------------------------------------------------------------- crafted snapshots


def _nested_outer(_key) -> bytes:
    return b"[" * 100_000 + b"]" * 100_000


def _nested_field(_key) -> bytes:
    return b'{"v":1,"alg":"Ed25519","payload":"e30=","sig":' + b"[" * 50_000 + b"]" * 50_000 + b"}"


def _oversize(_key) -> bytes:
    return b'{"v":1,"pad":"' + b"x" * (MAX_SNAPSHOT_BYTES + 1) + b'"}'


def _signed_nested(key) -> bytes:
    payload = b'{"v":1,"x":' + b"[" * 5_000 + b"]" * 5_000 + b"}"
    return json.dumps(
        {
            "v": 1,
            "alg": "Ed25519",
            "payload": base64.b64encode(payload).decode(),
            "sig": base64.b64encode(key.sign(payload)).decode(),
        }
    ).encode()


CRAFTED = [
    pytest.param(_nested_outer, id="nested-message"),
    pytest.param(_nested_field, id="nested-field"),
    pytest.param(_oversize, id="over-size"),
    pytest.param(_signed_nested, id="nested-signed-payload"),
]


@pytest.mark.parametrize("craft", CRAFTED)
def test_crafted_snapshots_are_rejected_without_recursion(key, craft) -> None:
    with pytest.raises(SnapshotRejected) as caught:
        verify_snapshot(craft(key), key.public_key(), now=T0, machine_id="laser-1")
    assert caught.value.reason == "malformed"
    assert "nested" in caught.value.detail or "limit" in caught.value.detail


@pytest.mark.parametrize("craft", CRAFTED)
def test_a_crafted_snapshot_is_journaled_and_the_node_keeps_its_own(
    cfg, key, clock, mock_pins, agents, caplog, craft
) -> None:
    a = make(cfg, key, clock, mock_pins)
    agents.append(a)
    deliver(a.on_snapshot, sign_snapshot(snapshot(), key))
    held = a.trust.snapshot
    deliver(a.on_snapshot, craft(key))
    assert a.trust.snapshot is held
    assert "RecursionError" not in caplog.text
    rejected = [e["data"] for e in events(cfg) if e["type"] == "snapshot.rejected"]
    assert [r["reason"] for r in rejected] == ["malformed"]
    tap(a, DAVE)
    assert pin_state(mock_pins)


# --------------------------------------------------------------------------- supervision


@pytest.mark.integration
def test_the_journal_sender_comes_back_after_an_error(
    tmp_path, key, clock, mock_pins, mosquitto: MosquittoProcess, agents, caplog
) -> None:
    cfg = node_cfg(tmp_path / "journal.db", mosquitto.url)
    obs = Observer(mosquitto.url, "fablab/test/")
    a = make(cfg, key, clock, mock_pins, connect=True)
    agents.append(a)
    real_pending = a.journal.pending
    failed: list[int] = []

    def pending_once_broken(*args, **kw):
        if not failed:
            failed.append(1)
            raise RuntimeError("a bug in the sender")
        return real_pending(*args, **kw)

    a.journal.pending = pending_once_broken  # type: ignore[method-assign]
    try:
        a.start()
        poll_until(lambda: (a.step(), obs.event("node.boot"))[1], what="node.boot published")
        assert failed and "loop journal-sender crashed" in caplog.text
    finally:
        a.shutdown()
        obs.close()


def test_a_failing_step_powers_off_and_the_loop_goes_on(
    cfg, key, clock, mock_pins, agents, caplog
) -> None:
    a = make(cfg, key, clock, mock_pins)
    agents.append(a)
    deliver(a.on_snapshot, sign_snapshot(snapshot(), key))
    tap(a, DAVE)
    assert pin_state(mock_pins)
    assert isinstance(a.reader, SimulatedReader)
    reader: SimulatedReader = a.reader
    real_poll = reader.poll
    broken: list[int] = []

    def poll_once_broken() -> str | None:
        if not broken:
            broken.append(1)
            raise RuntimeError("reader fell off the bus")
        return real_poll()

    reader.poll = poll_once_broken  # type: ignore[method-assign]
    loop = threading.Thread(target=a.run)
    loop.start()
    try:
        poll_until(lambda: a.sessions.current is None, timeout=10, what="the session to end")
        assert not pin_state(mock_pins)
        assert "reader fell off the bus" in caplog.text and "Traceback" in caplog.text
        ended = [e["data"] for e in events(cfg) if e["type"] == "session.ended"][-1]
        assert ended["end_reason"] == "node_error"
        reader.present(DAVE)  # the loop is still there: the next tap works
        poll_until(lambda: pin_state(mock_pins), timeout=10, what="power back on a new tap")
    finally:
        a.stopping.set()
        loop.join(10)
    assert not loop.is_alive() and not pin_state(mock_pins)


@pytest.mark.integration
def test_the_node_loop_pings_the_systemd_watchdog(site) -> None:
    from tests.support.harness import Proc
    from tests.test_hub_health import NotifySocket

    site.start_hub()  # it makes the signing key the node needs
    ns = NotifySocket()
    proc = Proc(
        ["node", "--config", str(site.files.node_configs["laser-1"])],
        site.tmp / "laser-1-watchdog.log",
        env={"GPIOZERO_PIN_FACTORY": "mock", "NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "600000"},
    )  # a ping at most every 0.2 s
    try:
        ns.wait_for(
            lambda ms: sum(m == "WATCHDOG=1" for m in ms) >= 3,
            what="repeated WATCHDOG=1 from the node loop",
        )
    finally:
        proc.stop()
        ns.close()
