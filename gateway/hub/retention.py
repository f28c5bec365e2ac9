"""Retention: what the hub deletes once it is older than the hub config says.

Owns no table: each category is a purge function of the table's owner, which counts
(the dry run of ``fabgate retention``) or deletes (the daily job of the hub service and
``fabgate retention --apply``) with the same query. The cutoffs are computed from one
``now`` (the caller's clock, injected), so a run is one consistent picture.

- ``taps`` (3 months): allowed taps, badge-outs, certify and enrol taps; staff presence
  events and rows; enrolment windows;
- ``denials`` (3 months): denied taps; log-in failure counters;
- ``refusals`` (3 months): node messages the hub refused (their payloads carry uids);
- ``node_events`` (12 months): every other raw node event (session, job, boot...): the
  sessions and jobs tables keep what billing needs;
- ``sessions`` (10 years): closed sessions and finished jobs;
- ``audit`` (10 years): the audit log, purged below a checkpoint (``gateway.hub.audit``);
- ``invoices`` (10 years): closed invoices and credit notes, counted, never deleted.

A run that applies writes one ``retention.applied`` audit entry with its counts (not
when nothing was deleted, so a daily job on a quiet hub does not grow the log).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from gateway.billing import invoicing
from gateway.config.models import RetentionConfig
from gateway.core.clock import iso
from gateway.hub import accounts, audit, enrolment, jobs, presence, sessions
from gateway.hub.db import HubStore
from gateway.hub.events import journal, refusals

Purge = Callable[[HubStore, str, bool], int]


def _audit_purge(store: HubStore, before: str, apply: bool, actor: str, now: datetime) -> int:
    if apply:
        return audit.purge_before(store, before, actor=actor, at=now)
    found = audit.purgeable(store, before)
    return found[0] if found else 0


@dataclass(frozen=True)
class Line:
    """One kind of record in a run: its category, what it is, the cutoff, how many."""

    category: str
    what: str
    cutoff: str
    count: int
    deleted: bool  # False: counted only (dry run, or records the hub never deletes)


@dataclass(frozen=True)
class Report:
    now: str
    applied: bool
    lines: tuple[Line, ...]

    @property
    def total(self) -> int:
        return sum(line.count for line in self.lines if line.deleted)


# (category, what, purge(store, before, apply)); invoices are only counted.
_PURGES: tuple[tuple[str, str, Purge], ...] = (
    ("taps", "tap events", lambda s, b, a: journal.purge_events(s, "taps", b, apply=a)),
    ("taps", "staff presence rows", lambda s, b, a: presence.purge(s, b, apply=a)),
    ("taps", "enrolment windows", lambda s, b, a: enrolment.purge(s, b, apply=a)),
    ("denials", "denied taps", lambda s, b, a: journal.purge_events(s, "denials", b, apply=a)),
    ("denials", "log-in failure counters", lambda s, b, a: accounts.purge_throttle(s, b, apply=a)),
    ("refusals", "refused node messages", lambda s, b, a: refusals.purge(s, b, apply=a)),
    (
        "node_events",
        "other node events",
        lambda s, b, a: journal.purge_events(s, "node_events", b, apply=a),
    ),
    ("sessions", "closed sessions", lambda s, b, a: sessions.purge_closed(s, b, apply=a)),
    ("sessions", "finished jobs", lambda s, b, a: jobs.purge(s, b, apply=a)),
)


def run(
    store: HubStore,
    retention: RetentionConfig,
    now: datetime,
    *,
    apply: bool,
    actor: str = "retention",
) -> Report:
    """Count (``apply=False``) or delete what is past its retention at ``now``, all in
    one transaction when applying, so a failure leaves everything as it was."""
    lines: list[Line] = []
    with store.atomic():
        for category, what, purge in _PURGES:
            cutoff = iso(getattr(retention, category).cutoff(now))
            lines.append(Line(category, what, cutoff, purge(store, cutoff, apply), apply))
        cutoff = iso(retention.audit.cutoff(now))
        lines.append(
            Line(
                "audit",
                "audit entries",
                cutoff,
                _audit_purge(store, cutoff, apply, actor, now),
                apply,
            )
        )
        cutoff = iso(retention.invoices.cutoff(now))
        lines.append(
            Line(
                "invoices",
                "closed invoices (kept)",
                cutoff,
                invoicing.issued_before(store, cutoff),
                False,
            )
        )
        report = Report(iso(now), apply, tuple(lines))
        if apply and report.total:
            audit.record(
                store,
                actor,
                audit.RETENTION_APPLIED,
                "retention",
                {f"{ln.category}.{ln.what}": ln.count for ln in lines if ln.deleted and ln.count},
                at=now,
            )
    return report
