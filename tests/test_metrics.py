"""``/metrics`` over real HTTP from a real hub fed real node messages through Mosquitto.

The text is parsed with prometheus_client's own parser, so what a Prometheus server
would read is what is checked: stored events by type, refusals by kind and node,
dead-lettered events, node last-seen, backlog and snapshot age, open sessions, ingest
latency; and who may read it (a ``metrics`` token or a config token, nobody else).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import load_hub_config
from gateway.contract import Envelope, Topics, encode_status
from gateway.core.sdnotify import Watchdog
from gateway.core.supervise import Supervisor
from gateway.hub.db import HubStore
from gateway.hub.service import HubService
from gateway.hub.tokens import create_token
from gateway.web import hub_web_app
from tests.support.builders import session_events
from tests.support.clock import AheadMono, FakeClock
from tests.support.harness import Observer, Site, http_request, poll_until
from tests.support.mosquitto import MosquittoProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def hub(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> Iterator[tuple[HubService, Site, FakeClock]]:
    site = Site(tmp_path, mosquitto.url)
    cfg = load_hub_config(site.files.hub_config)
    cfg = dataclasses.replace(cfg, alerts=dataclasses.replace(cfg.alerts, email=None, webhook=None))
    clock = FakeClock(datetime.now(UTC))
    mono = AheadMono()
    svc = HubService(
        cfg,
        web_app=hub_web_app,
        mono=mono,
        wall=clock.wall,
        watchdog=Watchdog(env={}),
        supervisor=Supervisor(mono=mono, backoff_min=0.05),
    )
    svc.start()
    assert svc.link.wait_connected(10)
    try:
        yield svc, site, clock
    finally:
        svc.stop()


def scrape(url: str, token: str | None) -> tuple[int, dict[str, str], str]:
    status, headers, body = http_request(url + "metrics", token=token)
    return status, headers, body.decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(parsed: dict, name: str, **labels: str) -> float:  # noqa: ANN001
    return parsed[(name, tuple(sorted(labels.items())))]


def test_metrics_from_real_node_messages(hub, mosquitto: MosquittoProcess) -> None:
    svc, site, clock = hub
    url = svc.web_url
    assert url is not None
    topics = Topics(svc.cfg.mqtt.prefix)
    obs = Observer(mosquitto.url, svc.cfg.mqtt.prefix)
    try:
        start = clock.wall() - timedelta(minutes=5)
        events = session_events("s-1", start, 125.0, "m-alice", "laser-1")
        still_open = session_events("s-2", start, 60.0, "m-bob", "cnc-1")[:1]
        status = encode_status(
            node="laser-1",
            machine="laser-1",
            online=True,
            heartbeat_s=15.0,
            backlog=7,
            journal="ok",
            snapshot_version=3,
            snapshot_age_s=100.0,
            snapshot_max_age_s=259200.0,
            time=clock.wall(),
        )
        obs.client.publish(topics.node_status("laser-1"), status, qos=1, retain=True)
        for env in [*events, *still_open]:
            obs.publish(topics.node_events(env.node), env.encode())
        forged = Envelope.new(  # laser-1 speaking of cnc-1's session: forbidden
            node="laser-1",
            seq=9,
            boot="b",
            type="session.started",
            data={**still_open[0].data, "session_id": "s-3"},
        )
        obs.publish(topics.node_events("laser-1"), forged.encode())
        obs.publish(topics.node_events("laser-1"), b"{garbage")
        obs.publish(topics.node_events("intruder"), b"{}")
        for env in [*events, *still_open, forged]:
            obs.wait_acked(env)

        # The two without an event id have no acknowledgement to wait for.
        poll_until(
            lambda: (
                'kind="invalid",node="other"' in scrape(url, site.token)[2]
                and 'kind="invalid",node="laser-1"' in scrape(url, site.token)[2]
            ),
            what="the refusals counted",
        )
        status_code, headers, text = scrape(url, site.token)
        assert status_code == 200
        assert headers["Content-Type"].startswith("text/plain; version=")
        m = samples(text)
        assert value(m, "fabgate_hub_events_total", type="session.started") == 3
        assert value(m, "fabgate_hub_events_total", type="session.ended") == 1
        assert value(m, "fabgate_hub_events_dead_lettered_total", type="session.started") == 1
        assert value(m, "fabgate_hub_messages_refused_total", kind="forbidden", node="laser-1") == 1
        assert value(m, "fabgate_hub_messages_refused_total", kind="invalid", node="laser-1") == 1
        assert value(m, "fabgate_hub_messages_refused_total", kind="invalid", node="other") == 1
        assert value(m, "fabgate_hub_sessions_open", machine="cnc-1") == 1
        assert value(m, "fabgate_hub_sessions_open", machine="laser-1") == 0
        laser = {"node": "laser-1", "machine": "laser-1"}
        assert value(m, "fabgate_node_up", **laser) == 1
        assert value(m, "fabgate_node_up", node="cnc-1", machine="cnc-1") == 0
        assert value(m, "fabgate_node_journal_backlog", **laser) == 7
        assert value(m, "fabgate_node_journal_ok", **laser) == 1
        assert value(m, "fabgate_node_snapshot_max_age_seconds", **laser) == 259200
        seen = value(m, "fabgate_node_last_seen_timestamp_seconds", **laser)
        assert seen == pytest.approx(clock.wall().timestamp(), abs=1)
        assert value(m, "fabgate_node_snapshot_age_seconds", **laser) == pytest.approx(100, abs=1)
        # Ingest latency: one observation per committed message.
        stored = value(m, "fabgate_hub_messages_stored_total")
        assert stored == 7  # a status and six events, refused ones included
        assert value(m, "fabgate_hub_ingest_latency_seconds_count") == stored
        assert value(m, "fabgate_hub_ingest_latency_seconds_bucket", le="+Inf") == stored
        assert value(m, "fabgate_hub_ingest_waiting_seconds") == 0
        assert value(m, "fabgate_hub_loop_healthy", loop="ingest") == 1
        assert value(m, "fabgate_hub_broker_connected") == 1
        assert ("fabgate_hub_alerts_firing", (("kind", "node_offline"),)) in m

        # Time passes on the hub's clock: the snapshot ages, the node goes silent.
        clock.advance(3600)
        m = samples(scrape(url, site.token)[2])
        assert value(m, "fabgate_node_snapshot_age_seconds", **laser) == pytest.approx(3700, abs=1)
        assert value(m, "fabgate_node_up", **laser) == 0
        assert value(m, "fabgate_node_last_seen_timestamp_seconds", **laser) == seen
    finally:
        obs.close()


def test_who_may_read_the_metrics(hub) -> None:
    svc, site, _clock = hub
    url = svc.web_url
    assert url is not None
    with HubStore(svc.cfg.database) as store:
        _, metrics_token = create_token(store, "prometheus", ["metrics"], created_by="test")
        _, usage_token = create_token(store, "accounting", ["usage"], created_by="test")
    assert scrape(url, None)[0] == 401
    assert scrape(url, "fgt_not-a-token")[0] == 401
    status, _, body = scrape(url, usage_token)
    assert status == 403 and "metrics" in body
    assert scrape(url, metrics_token)[0] == 200
    assert scrape(url, site.token)[0] == 200  # a config token carries every scope
