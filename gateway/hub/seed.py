"""A seed file into the hub database: create what is missing, never touch what exists.

The database is the hub's: once a member, badge, project or certification is in it, the
web owns it (a renamed member, a new current project, a blocked badge, a revoked
certification), and importing the seed again at every start must not undo that. This
module writes no table itself: each row goes through the module that owns its table
(``members``, ``certifications``), so the import obeys the same rules as the pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.config import Seed
from gateway.hub import categories, certifications, members
from gateway.hub.db import HubStore


@dataclass
class SeedImport:
    """What one seed import created (and, with ``update``, how many rows it changed)."""

    members: int = 0
    badges: int = 0
    projects: int = 0
    certifications: int = 0
    updated: int = 0
    categories: list[str] = field(default_factory=list)  # codes the seed named, created

    @property
    def created(self) -> int:
        return self.members + self.badges + self.projects + self.certifications

    def summary(self) -> str:
        return (
            f"created {self.members} members, {self.badges} badges, {self.projects} "
            f"projects, {self.certifications} certifications"
            + (f"; updated {self.updated} rows" if self.updated else "")
            + (f"; new categories {', '.join(self.categories)}" if self.categories else "")
        )


def import_seed(store: HubStore, seed: Seed, *, update: bool = False) -> SeedImport:
    """Create what the seed has and the database lacks; never touch what exists.

    A member's ``current_project`` is set only for members this import creates.
    ``update=True`` (``fabgate import --update``) is the deliberate exception: the seed
    overwrites the fields it has, as the seed-as-source-of-truth import once did.
    Importing the same file again changes nothing (and does not bump ``data_version``).
    """
    report = SeedImport()
    with store.atomic():
        # Categories are data: a code the hub lacks is created (docs/admin.md).
        named: dict[str, str] = {}
        for i, m in enumerate(seed.members):
            named.setdefault(m.category, f"{seed.file}: members[{i}].category")
        report.categories = categories.ensure_codes(store, named, actor="seed")
        created_members: set[str] = set()
        for m in seed.members:
            if members.add_member(
                store,
                m.id,
                name=m.name,
                category=m.category,
                status=m.status,
                membership_end=m.membership_end,
                staff=m.staff,
                email=m.email,
            ):
                created_members.add(m.id)
                report.members += 1
            elif update:
                report.updated += members.update_member(
                    store,
                    m.id,
                    name=m.name,
                    category=m.category,
                    status=m.status,
                    membership_end=m.membership_end,
                    staff=m.staff,
                    email=m.email,
                )
            for uid in m.badges:
                if members.add_badge(store, uid, m.id):
                    report.badges += 1
                elif update:
                    report.updated += members.give_badge(store, uid, m.id)
        for p in seed.projects:
            if members.add_project(store, p.id, p.member, p.name):
                report.projects += 1
            elif update:
                report.updated += members.update_project(store, p.id, p.member, p.name)
        # Projects exist now: the members' current project can reference them.
        for m in seed.members:
            if m.id in created_members or update:
                members.set_current_project(store, m.id, m.current_project)
        for c in seed.certifications:
            if update:
                certifications.add_certification(
                    store,
                    c.member,
                    c.group,
                    c.level,
                    certified_by=c.certified_by,
                    certified_at=c.certified_at,
                    expires_at=c.expires,
                )
                continue
            report.certifications += certifications.add_if_missing(
                store,
                c.member,
                c.group,
                c.level,
                certified_by=c.certified_by,
                certified_at=c.certified_at,
                expires_at=c.expires,
            )
    return report
