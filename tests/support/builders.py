"""Test data several test modules share: a node's snapshot, its config, hub events and seed.

They used to live in one test module and be imported from it by others (or be copied):
a test module is for tests, and a newcomer looking for "the snapshot the node tests
use" should find it here. Dates are fixed on purpose: every one of these feeds code that
takes its clock as a parameter (the tests inject T0 or NOW), so none has to be recent.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.config import (
    ApiToken,
    GroupConfig,
    HubConfig,
    InvoicingConfig,
    MachineConfig,
    MqttConfig,
    NodeConfig,
    ReaderConfig,
    RelayConfig,
    Seed,
    SeedCertification,
    SeedMember,
    SeedProject,
    SellerConfig,
    SessionConfig,
)
from gateway.contract import Envelope
from gateway.contract.mqtt import RECONNECT_MAX_S, RECONNECT_MIN_S
from gateway.core.clock import iso
from gateway.core.snapshot import MachineInfo, MemberGrant, Snapshot

T0 = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)

# --------------------------------------------------------------------------- a node's view

PIN = 17
ALICE, BOB, STAFF = "04A1CE01", "04B0B0B0", "04FAB001"


def grant(member_id: str, level: int = 2, **kw: object) -> MemberGrant:
    """A member in good standing (membership and certification far ahead of T0)."""
    base = dict(
        member_id=member_id,
        name=member_id.title(),
        category="adherent",
        status="active",
        membership_end=date(2030, 1, 1),
        level=level,
        cert_expires=datetime(2030, 1, 1, tzinfo=UTC),
        staff=False,
        project_id=None,
    )
    base.update(kw)
    return MemberGrant(**base)  # type: ignore[arg-type]


def snapshot(
    version: int = 1,
    *,
    issued: datetime = T0,
    valid: timedelta = timedelta(days=7),
    machine: str = "laser-1",
    min_level: int = 2,
) -> Snapshot:
    """What a node on ``machine`` holds: Alice (level 2, project p1), Bob (not certified)
    and a staff trainer (level 3), no opening hours."""
    return Snapshot(
        site="test",
        version=version,
        issued_at=issued,
        valid_until=issued + valid,
        machine=MachineInfo(machine, machine, "laser", "laser", min_level=min_level),
        timezone="Europe/Paris",
        badges={ALICE: "alice", BOB: "bob", STAFF: "staff"},
        members={
            "alice": grant("alice", project_id="p1"),
            "bob": grant("bob", level=0),
            "staff": grant("staff", level=3, staff=True),
        },
        opening_hours={d: () for d in range(7)},
    )


def node_config(
    journal: Path,
    url: str = "mqtt://127.0.0.1:1883",
    *,
    reconnect_min: float = RECONNECT_MIN_S,
    reconnect_max: float = RECONNECT_MAX_S,
) -> NodeConfig:
    """laser-1's node, its files beside ``journal``, a simulated reader, relay on PIN."""
    return NodeConfig(
        file=journal.parent / "node.yaml",
        site="test",
        node_id="laser-1",
        machine_id="laser-1",
        journal=journal,
        hub_public_key=journal.parent / "hub.pub",
        max_snapshot_age=timedelta(hours=72),
        heartbeat=timedelta(seconds=15),
        mqtt=MqttConfig(
            url=url,
            prefix="fablab/test/",
            client_id="node-laser-1",
            reconnect_min=reconnect_min,
            reconnect_max=reconnect_max,
        ),
        relay=RelayConfig(pin=PIN),
        reader=ReaderConfig(driver="simulated", hold_off=0.0),
        session=SessionConfig(grace=0),
    )


# --------------------------------------------------------------------------- the hub's view

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # the day after T0


def env(
    type_: str,
    data: dict,
    *,
    seq: int = 1,
    time: datetime = T0,
    node: str = "laser1",
    id_: str | None = None,
) -> Envelope:
    e = Envelope.new(node=node, seq=seq, boot="b1", type=type_, data=data, time=time)
    return e if id_ is None else Envelope(**{**e.to_dict(), "id": id_})


def started(
    sid: str, start: datetime = T0, *, member: str = "m1", machine: str = "laser1", seq: int = 1
) -> Envelope:
    return env(
        "session.started",
        {
            "session_id": sid,
            "machine": machine,
            "member_id": member,
            "badge_uid": "AA0101AA",
            "project_id": None,
            "started_at": iso(start),
            "staff_present": False,
        },
        seq=seq,
        time=start,
        node=machine,
    )


def ended(
    sid: str,
    duration: float,
    start: datetime = T0,
    *,
    member: str = "m1",
    machine: str = "laser1",
    seq: int = 2,
) -> Envelope:
    end = start + timedelta(seconds=duration)
    return env(
        "session.ended",
        {
            "session_id": sid,
            "machine": machine,
            "member_id": member,
            "badge_uid": "AA0101AA",
            "project_id": "p1",
            "started_at": iso(start),
            "ended_at": iso(end),
            "duration_s": duration,
            "billable_minutes": 999,
            "end_reason": "badge_out",
        },
        seq=seq,
        time=end,
        node=machine,
    )


def seed() -> Seed:
    """Alice (m1: level 3 on laser, project p1), Bob (m2: suspended), Chloé (m3: her
    laser certification expired), Sam (s1: staff, trainer) and Eve (m5: a level 3 that
    tests revoke, over a live level 1), for the machines laser1, laser2 and cnc1."""
    return Seed(
        file=Path("seed.yaml"),
        members=(
            SeedMember(
                id="m1",
                name="Alice",
                category="adherent",
                badges=("AA0101AA",),
                current_project="p1",
            ),
            SeedMember(
                id="m2", name="Bob", category="adherent", status="suspended", badges=("BB0202BB",)
            ),
            SeedMember(
                id="m3",
                name="Chloé",
                category="professionnel",
                badges=("CC0303CC",),
                membership_end=date(2027, 1, 31),
            ),
            SeedMember(id="s1", name="Sam", category="adherent", staff=True, badges=("DD0404DD",)),
            SeedMember(id="m5", name="Eve", category="adherent", badges=("EE0505EE",)),
        ),
        projects=(SeedProject(id="p1", member="m1", name="Lamp"),),
        certifications=(
            # m1: level 2 and level 3 on laser -> 3; a level 1 on cnc does not count.
            SeedCertification("m1", "laser", 2, "s1", T0 - timedelta(days=400), None),
            SeedCertification("m1", "laser", 3, "s1", T0 - timedelta(days=10), None),
            SeedCertification("m1", "cnc", 1, "s1", T0 - timedelta(days=10), None),
            # m3: expired level 2
            SeedCertification(
                "m3", "laser", 2, "s1", T0 - timedelta(days=800), T0 - timedelta(days=70)
            ),
            SeedCertification("s1", "laser", 3, None, T0 - timedelta(days=800), None),
            # m5: level 3 that will be revoked, plus a live level 1
            SeedCertification("m5", "laser", 3, "s1", T0 - timedelta(days=50), None),
            SeedCertification("m5", "laser", 1, "s1", T0 - timedelta(days=40), None),
        ),
    )


# A seller that issues invoices with VAT (test SIRET and VAT number with valid keys).
INVOICING = InvoicingConfig(
    seller=SellerConfig(
        name="Fablab des Dunes",
        legal_form="Association loi 1901",
        address=("12 quai des Ateliers",),
        postcode="44000",
        city="Nantes",
        siret="73282932000074",
        vat_number="FR44732829320",
        email="compta@fablab-dunes.example",
    ),
    payment_days=30,
    iban="FR7630006000011234567890189",
    bic="AGRIFRPP",
)


def hub_config(
    where: Path,
    db: Path,
    *,
    site: str = "demo-lab",
    timezone: str = "Europe/Paris",
    tokens: tuple[ApiToken, ...] = (),
    groups: tuple[GroupConfig, ...] = (),
    machines: tuple[MachineConfig, ...] = (),
    **more: Any,
) -> HubConfig:
    """A hub configuration for in-process tests: French, web on a free port, its file and
    signing key in ``where``; ``more`` sets any other field (tariffs, opening_hours...)."""
    fields: dict[str, Any] = dict(
        file=where / "hub.yaml",
        site=site,
        timezone=timezone,
        language="fr",
        mqtt=MqttConfig(),
        database=db,
        signing_key=where / "hub.key",
        snapshot_validity=timedelta(hours=72),
        snapshot_refresh=timedelta(minutes=5),
        web_host="127.0.0.1",
        web_port=0,
        api_tokens=tokens,
        opening_hours={},
        groups=groups,
        machines=machines,
    )
    fields.update(more)
    return HubConfig(**fields)


def session_events(
    sid: str,
    start: datetime,
    duration: float,
    member: str,
    machine: str,
    project: str | None = None,
    seq: int = 1,
) -> list[Envelope]:
    """A closed session as its node sends it: started, then ended ``duration`` s later."""
    end = start + timedelta(seconds=duration)
    common = {
        "session_id": sid,
        "machine": machine,
        "member_id": member,
        "badge_uid": "AA0101AA",
        "project_id": project,
        "started_at": iso(start),
    }
    return [
        Envelope.new(
            node=machine,
            seq=seq,
            boot="b",
            type="session.started",
            time=start,
            data={**common, "staff_present": False},
        ),
        Envelope.new(
            node=machine,
            seq=seq + 1,
            boot="b",
            type="session.ended",
            time=end,
            data={
                **common,
                "ended_at": iso(end),
                "duration_s": duration,
                "billable_minutes": 0,
                "end_reason": "badge_out",
            },
        ),
    ]
