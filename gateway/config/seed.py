"""A seed file: the members, badges, projects and certifications a new hub starts from."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from gateway.config.loader import MISSING, Doc, Section, shown, suggest, unique
from gateway.config.models import (
    CATEGORY_CODE,
    CATEGORY_CODE_TEXT,
    MEMBER_STATUSES,
    Seed,
    SeedCertification,
    SeedMember,
    SeedProject,
    default_of,
)
from gateway.core.ids import normalise_uid
from gateway.core.levels import LEVELS_TEXT, Level

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SEED_TOP = ("members", "projects", "certifications")
_MEMBER_KEYS = (
    "id",
    "name",
    "category",
    "status",
    "membership_end",
    "staff",
    "email",
    "badges",
    "current_project",
)
_PROJECT_KEYS = ("id", "member", "name")
_CERT_KEYS = ("member", "group", "level", "certified_by", "certified_at", "expires")
_TIME_TEXT = "a date (2025-09-20) or a time with its timezone (2025-09-20T18:30:00Z)"


def _date(sec: Section, key: str) -> date | None:
    value = sec.raw(key, None)
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            sec.fail(key, "a date such as 2026-06-30", value)
    if value is not None and (isinstance(value, datetime) or not isinstance(value, date)):
        sec.fail(key, "a date such as 2026-06-30", shown(value))
    return value


def _datetime(sec: Section, key: str, default: Any = MISSING) -> datetime | None:
    value = sec.raw(key, default)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            sec.fail(key, _TIME_TEXT, value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            # A wall time without a zone would be read differently by each machine.
            sec.fail(key, _TIME_TEXT + "; this time has no timezone", str(value))
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    sec.fail(key, _TIME_TEXT, shown(value))


def _member_ref(
    sec: Section, key: str, members: dict[str, str], *, optional: bool = False
) -> str | None:
    ref = sec.id(key, None if optional else MISSING)
    if ref is not None and ref not in members:
        sec.fail(key, "the id of a member under `members:`" + suggest(ref, list(members)), ref)
    return ref


def seed_from(doc: Doc) -> Seed:
    top = doc.root(SEED_TOP)
    member_ids: dict[str, str] = {}
    badge_owner: dict[str, str] = {}
    members: list[tuple[Section, SeedMember]] = []
    for sec in top.sections("members", _MEMBER_KEYS, required=("id", "name", "category")):
        mid = sec.id("id")
        unique(sec, "id", mid, member_ids, "member id")
        badges: list[str] = []
        for path, raw in sec.items("badges"):
            if not isinstance(raw, str):
                doc.fail(
                    path,
                    'a badge UID as a quoted string such as "04A1CE01" '
                    "(unquoted, YAML may read it as a number)",
                    shown(raw),
                )
            try:
                uid = normalise_uid(raw)
            except ValueError:
                doc.fail(path, "a badge UID: 4 to 10 bytes of hex such as 04A1CE01", raw)
            if uid in badge_owner:
                doc.fail(path, f"a badge not already given ({uid} is at {badge_owner[uid]})", raw)
            badge_owner[uid] = path
            badges.append(uid)
        email = sec.text("email", None, pattern=_EMAIL, what="an e-mail address")
        members.append(
            (
                sec,
                SeedMember(
                    id=mid,
                    name=sec.text("name"),
                    category=sec.text("category", pattern=CATEGORY_CODE, what=CATEGORY_CODE_TEXT),
                    status=sec.choice("status", MEMBER_STATUSES, default_of(SeedMember, "status")),
                    membership_end=_date(sec, "membership_end"),
                    staff=sec.flag("staff", default_of(SeedMember, "staff")),
                    email=email,
                    badges=tuple(badges),
                    current_project=sec.id("current_project", None),
                ),
            )
        )

    projects: list[SeedProject] = []
    project_owner: dict[str, str] = {}
    project_ids: dict[str, str] = {}
    for sec in top.sections("projects", _PROJECT_KEYS, required=("id", "member", "name")):
        pid = sec.id("id")
        unique(sec, "id", pid, project_ids, "project id")
        owner = _member_ref(sec, "member", member_ids)
        assert owner is not None
        project_owner[pid] = owner
        projects.append(SeedProject(id=pid, member=owner, name=sec.text("name")))

    for sec, member in members:
        project = member.current_project
        if project is not None and project_owner.get(project) != member.id:
            mine = [p for p, owner in project_owner.items() if owner == member.id]
            sec.fail(
                "current_project",
                f"the id of one of {member.id}'s projects under "
                f"`projects:` ({', '.join(mine) or 'none'})",
                project,
            )

    certs: list[SeedCertification] = []
    cert_seen: dict[str, str] = {}
    for sec in top.sections(
        "certifications", _CERT_KEYS, required=("member", "group", "level", "certified_at")
    ):
        holder = _member_ref(sec, "member", member_ids)
        assert holder is not None
        group = sec.id("group")
        unique(sec, "group", f"{holder}/{group}", cert_seen, "member/group pair")
        certified_at = _datetime(sec, "certified_at")
        assert certified_at is not None
        expires = _datetime(sec, "expires", None)
        if expires is not None and expires <= certified_at:
            sec.fail("expires", "a time after certified_at", sec.raw("expires"))
        certs.append(
            SeedCertification(
                member=holder,
                group=group,
                level=sec.integer("level", MISSING, Level.NONE, Level.TRAINER, f" ({LEVELS_TEXT})"),
                certified_by=_member_ref(sec, "certified_by", member_ids, optional=True),
                certified_at=certified_at,
                expires=expires,
            )
        )

    return Seed(
        file=doc.file,
        members=tuple(m for _, m in members),
        projects=tuple(projects),
        certifications=tuple(certs),
    )


def load_seed(path: str | Path) -> Seed:
    """Read and validate a seed file (members, badges, projects, certifications).

    Certification groups are not checked here: the seed does not know the hub's groups,
    the store does when it imports.
    """
    return seed_from(Doc(path))
