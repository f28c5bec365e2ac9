"""The node's textfile of metrics: written on its interval, atomically, never in the way.

The agent runs in-process on a real journal with mock pins and a simulated reader (as
in test_node_agent); the file it writes is parsed with prometheus_client's parser, which
reads the format node_exporter's textfile collector reads.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import ConfigError, load_node_config
from gateway.config.models import NodeMetricsConfig
from gateway.contract.signing import generate_key, sign_snapshot
from gateway.node.metrics import MetricsFile
from tests.support.builders import ALICE, T0, node_config, snapshot
from tests.support.clock import FakeClock
from tests.support.harness import Site
from tests.test_node_agent import make_agent, tap


def read(path: Path) -> dict[str, float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        for s in family.samples:
            assert s.labels == {"node": "laser-1"}
            out[s.name] = s.value
    return out


def test_the_agent_writes_its_metrics_on_its_interval(tmp_path: Path, mock_pins) -> None:
    prom = tmp_path / "textfile" / "fabgate.prom"
    prom.parent.mkdir()
    cfg = dataclasses.replace(
        node_config(tmp_path / "journal.db"), metrics=NodeMetricsConfig(textfile=prom)
    )
    clock = FakeClock(T0)
    key = generate_key()
    agent = make_agent(cfg, key, clock, mock_pins)
    try:
        agent.step()
        first = read(prom)
        assert first["fabgate_node_relay_on"] == 0
        assert first["fabgate_node_session_open"] == 0
        assert first["fabgate_node_journal_ok"] == 1
        assert first["fabgate_node_snapshot_max_age_seconds"] == 72 * 3600
        assert "fabgate_node_snapshot_age_seconds" not in first  # none held yet
        assert "fabgate_node_broker_connected" not in first  # no broker link here
        assert first["fabgate_node_reader_last_read_timestamp_seconds"] == T0.timestamp()

        agent.on_snapshot("t", sign_snapshot(snapshot(), key))
        tap(agent, ALICE)  # a session starts: relay on, events waiting for the hub
        assert agent.relay.is_on
        assert read(prom) == first  # not due yet: 15 s between writes
        clock.advance(15)
        agent.step()
        now = read(prom)
        assert now["fabgate_node_relay_on"] == 1 and now["fabgate_node_session_open"] == 1
        assert now["fabgate_node_journal_backlog"] >= 2  # tap and session.started
        assert now["fabgate_node_snapshot_age_seconds"] == pytest.approx(15, abs=1)
        assert now["fabgate_node_metrics_written_timestamp_seconds"] == clock.wall().timestamp()
        assert [p.name for p in prom.parent.iterdir()] == ["fabgate.prom"]  # no temp left
    finally:
        agent.relay.close()
        agent.journal.close()


def test_a_metrics_file_that_cannot_be_written_changes_nothing_else(
    tmp_path: Path, mock_pins, caplog
) -> None:
    not_a_dir = tmp_path / "not-a-directory"
    not_a_dir.write_text("")  # the textfile's directory is a file: every write fails
    prom = not_a_dir / "fabgate.prom"
    cfg = dataclasses.replace(
        node_config(tmp_path / "journal.db"), metrics=NodeMetricsConfig(textfile=prom)
    )
    clock = FakeClock(T0)
    key = generate_key()
    agent = make_agent(cfg, key, clock, mock_pins)
    try:
        agent.on_snapshot("t", sign_snapshot(snapshot(), key))
        tap(agent, ALICE)
        assert agent.relay.is_on  # the tap worked
        clock.advance(15)
        agent.step()
        clock.advance(15)
        agent.step()
        assert agent.relay.is_on
        assert not prom.exists()
        # Said once, not at every interval.
        assert sum("cannot write the metrics file" in r.message for r in caplog.records) == 1
    finally:
        agent.relay.close()
        agent.journal.close()


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path: Path) -> None:
    prom = tmp_path / "fabgate.prom"
    f = MetricsFile(prom, 15, FakeClock(T0).mono)
    assert f.write("a 1\n")
    (tmp_path / "blocker").mkdir()
    broken = MetricsFile(tmp_path / "blocker", 15, FakeClock(T0).mono)  # a directory
    assert not broken.write("b 2\n")
    assert prom.read_text() == "a 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "fabgate.prom"]


def test_node_config_metrics_section(tmp_path: Path) -> None:
    site = Site(tmp_path, "mqtt://127.0.0.1:1883")
    path = site.files.node_configs["laser-1"]
    text = path.read_text(encoding="utf-8")
    assert load_node_config(path).metrics.textfile is None  # off by default
    path.write_text(text + "metrics:\n  textfile: ./fabgate.txt\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_node_config(path)
    assert err.value.key == "metrics.textfile" and ".prom" in err.value.expected
    path.write_text(text + "metrics:\n  textfile: ./m/fabgate.prom\n  every: 30s\n", "utf-8")
    cfg = load_node_config(path)
    assert cfg.metrics.textfile == (path.parent / "m" / "fabgate.prom").resolve()
    assert cfg.metrics.every.total_seconds() == 30
