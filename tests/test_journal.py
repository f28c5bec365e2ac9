"""The node journal: durable, ordered, and forgetting only what the hub acknowledged."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.contract import Envelope
from gateway.node import Journal, JournalUnavailable


@pytest.fixture
def journal(tmp_path: Path):
    j = Journal(tmp_path / "j.db")
    yield j
    j.close()


def add(j: Journal, n: int = 1, **state: object) -> list[Envelope]:
    return [
        j.append(node="n1", boot="b", type="tap", data={"i": i}, state=state or None)
        for i in range(n)
    ]


def test_is_wal_with_full_sync(journal: Journal) -> None:
    db = sqlite3.connect(journal.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # synchronous is per connection: check the journal's own connection.
    assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    db.close()


def test_sequence_is_strictly_increasing_across_acks_and_reopen(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    first = add(j, 3)
    j.ack([e.id for e in first])  # every row gone...
    j.close()
    j = Journal(tmp_path / "j.db")
    (later,) = add(j)
    assert later.seq == 4  # ...but the counter is not reset
    j.close()


def test_only_acknowledged_events_leave(journal: Journal) -> None:
    evs = add(journal, 4)
    assert journal.ack([evs[1].id, evs[3].id, "unknown-id"]) == 2
    assert [p.id for p in journal.pending()] == [evs[0].id, evs[2].id]
    assert journal.ack([evs[1].id]) == 0  # a repeated ack is harmless


def test_pending_payload_is_the_published_envelope(journal: Journal) -> None:
    (env,) = add(journal)
    (p,) = journal.pending()
    assert Envelope.decode(p.payload) == env


def test_state_changes_commit_with_their_event(journal: Journal) -> None:
    add(journal, open_session={"id": "s1"})
    assert journal.get_state("open_session") == {"id": "s1"}
    journal.append(node="n1", boot="b", type="session.ended", data={}, state={"open_session": None})
    assert journal.get_state("open_session") is None


def test_failed_append_rolls_back_event_and_state(journal: Journal) -> None:
    with pytest.raises(TypeError):
        journal.append(
            node="n1", boot="b", type="tap", data={}, state={"open_session": {"bad": object()}}
        )
    assert journal.count() == 0
    assert journal.get_state("open_session") is None
    (env,) = add(journal)
    assert env.seq == 1


def test_committed_events_survive_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    script = (
        "import os, sys; from gateway.node.journal import Journal\n"
        f"j = Journal({str(path)!r})\n"
        "for i in range(50): j.append(node='n1', boot='b', type='tap', data={'i': i})\n"
        "os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == -9
    j = Journal(path)
    data = [json.loads(p)["data"]["i"] for p in j.all_payloads()]
    j.close()
    assert data == list(range(50))


def test_events_written_before_share_the_commit_and_keep_their_order(journal: Journal) -> None:
    env = journal.append(
        node="n1",
        boot="b",
        type="session.started",
        data={"s": 1},
        state={"open_session": {"id": "s1"}},
        before=[("tap", {"t": 1})],
    )
    types = [json.loads(p)["type"] for p in journal.all_payloads()]
    seqs = [json.loads(p)["seq"] for p in journal.all_payloads()]
    assert types == ["tap", "session.started"] and seqs == [1, 2] and env.seq == 2
    with pytest.raises(TypeError):  # a failure rolls back both events and the state
        journal.append(node="n1", boot="b", type="x", data={}, before=[("y", {"o": object()})])
    assert journal.count() == 2
    (nxt,) = add(journal)
    assert nxt.seq == 3


def _fill_to_the_limit(journal: Journal) -> None:
    """Real SQLITE_FULL: the database may not grow by one more page."""
    pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
    journal._db.execute(f"PRAGMA max_page_count = {pages}")


def test_a_full_disk_raises_the_real_error_not_a_failed_rollback(journal: Journal) -> None:
    add(journal, 2)
    _fill_to_the_limit(journal)
    with pytest.raises(JournalUnavailable) as caught:
        for i in range(200):  # the first commit that needs a new page fails
            journal.append(node="n1", boot="b", type="tap", data={"pad": "x" * 1000, "i": i})
    assert "database or disk is full" in str(caught.value)
    assert "cannot rollback" not in str(caught.value)
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    # Reads still work, the failed commit left nothing behind, and space coming back is
    # enough: the same journal writes again, with the sequence unbroken.
    written = journal.count()
    journal._db.execute("PRAGMA max_page_count = 1000000")
    (env,) = add(journal)
    assert env.seq == written + 1 and journal.count() == written + 1


def test_a_journal_that_cannot_be_opened_says_why_and_can_be_opened_later(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the journal's directory should be")
    j = Journal(blocker / "j.db", open_now=False)
    assert not j.is_open
    with pytest.raises(JournalUnavailable, match="data"):
        j.open()
    with pytest.raises(JournalUnavailable, match="not open"):
        j.append(node="n1", boot="b", type="tap", data={})
    blocker.unlink()
    j.open()
    (env,) = add(j)
    assert env.seq == 1 and j.count() == 1
    j.close()


def test_reopening_keeps_everything(journal: Journal) -> None:
    add(journal, 2, open_session={"id": "s1"})
    journal.open()  # what the node does when it retries a failed journal
    assert journal.count() == 2 and journal.get_state("open_session") == {"id": "s1"}
    journal.set_states({"open_session": None, "time_floor": "x"})
    assert journal.get_state("open_session") is None and journal.get_state("time_floor") == "x"
