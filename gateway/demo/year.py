"""A plausible year of a public fablab, written straight into a hub database.

The live demo produces a handful of sessions; an activity report (and a benchmark) needs
a year: seasons, a summer closure, a busy laser, school groups on the printer,
associations on the embroidery machine, members joining at the start of the school year,
certifications given before first use, projects and jobs. Everything comes from one
seeded ``random.Random``, so the same (year, seed) gives the same database, and rows go
in with ``executemany`` (the hub modules' bulk inserts) in one transaction, so a year
takes about a second.

Sessions are placed machine by machine, day by day, inside the site's opening hours and
never overlapping on one machine; a session may run past closing time, as a print does.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.config import GroupConfig, MachineConfig, load_seed
from gateway.core.clock import iso
from gateway.core.snapshot import parse_opening_hours
from gateway.demo.site import GROUPS, MACHINES, OPENING_HOURS, TIMEZONE
from gateway.hub.catalogue import sync_catalogue
from gateway.hub.certifications import add_certifications
from gateway.hub.db import HubStore
from gateway.hub.jobs import add_jobs
from gateway.hub.members import add_badges, add_members, add_projects, mark_staff
from gateway.hub.seed import import_seed
from gateway.hub.sessions import add_closed_sessions
from gateway.policies.metering import billable_minutes, split_minutes

# Rows for the hub modules' bulk inserts, in the column order their docstrings give.
MemberRow = tuple[str, str, str, str, str, int, str, str]
SessionRow = tuple[
    str,
    str,
    str,
    str,
    str,
    str | None,
    str,
    str,
    float,
    int,
    str,
    str,
    str,
    float,
    float,
    int,
    int,
    int,
]
JobRow = tuple[str, str, str, str, str, str | None, str, str, float, float, str, str, str, str]
CertificationRow = tuple[str, str, int, str, str, str, str | None]

# Share of each category among members (a tiers-lieu open to the public).
CATEGORY_SHARE = {
    "grand_public": 0.42,
    "adherent": 0.30,
    "professionnel": 0.08,
    "scolaire": 0.12,
    "association": 0.08,
}
# How much a category favours each machine, relative to the others.
AFFINITY = {
    "grand_public": {"laser-1": 1.0, "cnc-1": 0.25, "printer-1": 1.0, "embroidery-1": 0.5},
    "adherent": {"laser-1": 1.0, "cnc-1": 0.8, "printer-1": 0.9, "embroidery-1": 0.5},
    "professionnel": {"laser-1": 1.0, "cnc-1": 1.6, "printer-1": 0.4, "embroidery-1": 0.2},
    "scolaire": {"laser-1": 0.6, "cnc-1": 0.1, "printer-1": 1.6, "embroidery-1": 0.3},
    "association": {"laser-1": 0.5, "cnc-1": 0.3, "printer-1": 0.5, "embroidery-1": 1.6},
}


@dataclass(frozen=True)
class MachineProfile:
    per_day: float  # mean sessions per open day, before seasonal factors
    median_min: float  # lognormal session length
    sigma: float
    max_min: float
    busy_share: float  # share of a session the machine is busy
    jobs: tuple[int, int]  # jobs per session, inclusive range
    job_ext: str
    end_reason: str


PROFILES = {
    "laser-1": MachineProfile(25.5, 12, 0.55, 120, 0.45, (1, 3), "lbrn2", "badge_out"),
    "cnc-1": MachineProfile(9.0, 32, 0.5, 240, 0.55, (1, 2), "nc", "badge_out"),
    "printer-1": MachineProfile(14.0, 24, 0.6, 360, 0.85, (1, 1), "gcode", "job_finished"),
    "embroidery-1": MachineProfile(15.5, 18, 0.5, 150, 0.6, (1, 2), "dst", "badge_out"),
}
MONTH_FACTOR = (1.05, 1.1, 1.15, 1.0, 0.9, 0.95, 0.7, 0.55, 1.05, 1.2, 1.2, 0.95)
WEEKDAY_FACTOR = {1: 0.9, 2: 1.1, 3: 0.95, 4: 1.0, 5: 1.15}
# Closed days (month, day) on top of the summer closure and Christmas week.
HOLIDAYS = {(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)}

FIRST_NAMES = (
    "Adèle",
    "Agathe",
    "Ahmed",
    "Alix",
    "Amandine",
    "Antoine",
    "Arthur",
    "Aurélien",
    "Awa",
    "Baptiste",
    "Bastien",
    "Camille",
    "Céline",
    "Charlotte",
    "Clément",
    "Coralie",
    "Damien",
    "Delphine",
    "Elsa",
    "Enzo",
    "Étienne",
    "Fatou",
    "Florian",
    "Gaëlle",
    "Guillaume",
    "Hélène",
    "Hugo",
    "Inès",
    "Jade",
    "Jérôme",
    "Julie",
    "Kévin",
    "Léa",
    "Léon",
    "Lina",
    "Louis",
    "Lucie",
    "Malik",
    "Manon",
    "Margaux",
    "Mathis",
    "Maxime",
    "Mehdi",
    "Nadia",
    "Nathan",
    "Noémie",
    "Océane",
    "Pauline",
    "Quentin",
    "Raphaël",
    "Rose",
    "Samir",
    "Sarah",
    "Sofiane",
    "Solène",
    "Thomas",
    "Valentin",
    "Yasmine",
    "Yann",
    "Zoé",
)
LAST_NAMES = (
    "Arnaud",
    "Aubert",
    "Barbier",
    "Blanc",
    "Bonnet",
    "Boyer",
    "Brun",
    "Caron",
    "Chevalier",
    "Clément",
    "Colin",
    "Da Silva",
    "Denis",
    "Diallo",
    "Dupont",
    "Durand",
    "Fabre",
    "Faure",
    "Fontaine",
    "Fournier",
    "Garnier",
    "Gauthier",
    "Girard",
    "Guérin",
    "Haddad",
    "Henry",
    "Joly",
    "Lambert",
    "Laurent",
    "Leroy",
    "Lopez",
    "Marchand",
    "Mercier",
    "Meyer",
    "Michel",
    "Morel",
    "Muller",
    "Nguyen",
    "Nicolas",
    "Perrin",
    "Picard",
    "Renard",
    "Robin",
    "Rousseau",
    "Roussel",
    "Roy",
    "Simon",
    "Vincent",
)
PROJECT_NAMES = (
    "Lampe en contreplaqué",
    "Boîte à dés",
    "Enseigne lumineuse",
    "Support de téléphone",
    "Maquette d'architecture",
    "Robot suiveur de ligne",
    "Nichoir à oiseaux",
    "Jeu de société",
    "Horloge murale",
    "Cadre photo gravé",
    "Tote bags brodés",
    "Mobilier de jardin",
    "Pièces de vélo",
    "Boîtier de prototype",
    "Décor de théâtre",
    "Signalétique du tiers-lieu",
    "Bijoux en plexiglas",
    "Ukulélé",
    "Station météo",
    "Étagère modulaire",
    "Tampon encreur",
    "Écussons du club",
    "Prothèse de main",
    "Trophées du tournoi",
    "Carte en relief",
)
ORG_NAMES = {
    "scolaire": ("Collège", "Lycée", "École"),
    "association": ("Association", "Club", "Compagnie"),
}


@dataclass(frozen=True)
class YearSummary:
    members: int
    sessions: int
    jobs: int
    projects: int
    certifications: int
    hours: float


@dataclass
class _Member:
    id: str
    category: str
    joined: date
    weights: dict[str, float]
    projects: list[str]


def _open_days(year: int) -> list[date]:
    days = []
    day = date(year, 1, 1)
    while day.year == year:
        closed = (
            (day.month, day.day) in HOLIDAYS
            or (day.month == 8 and day.day <= 23)
            or (day.month == 12 and day.day >= 24)
        )
        if not closed and day.weekday() in WEEKDAY_FACTOR:
            days.append(day)
        day += timedelta(days=1)
    return days


def _slots(
    day: date, hours: dict[int, tuple[tuple[time, time], ...]], zone: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    return [
        (
            datetime.combine(day, a, zone).astimezone(UTC),
            datetime.combine(day, b, zone).astimezone(UTC),
        )
        for a, b in hours.get(day.weekday(), ())
    ]


def _join_date(rng: random.Random, year: int) -> date:
    """Almost half the members were there before the year; newcomers come in September
    and January more than in summer."""
    if rng.random() < 0.45:
        return date(year - 1 - rng.randrange(4), 1, 1) + timedelta(days=rng.randrange(365))
    month = rng.choices(range(1, 13), weights=(12, 8, 8, 7, 6, 5, 3, 1, 16, 13, 9, 5))[0]
    return date(year, month, 1) + timedelta(days=rng.randrange(28))


def _members(rng: random.Random, year: int, count: int) -> tuple[list[MemberRow], list[_Member]]:
    rows: list[MemberRow] = []
    members = []
    cats = list(CATEGORY_SHARE)
    for i in range(count):
        cat = rng.choices(cats, weights=[CATEGORY_SHARE[c] for c in cats])[0]
        if cat in ORG_NAMES:
            name = (
                f"{rng.choice(ORG_NAMES[cat])} {rng.choice(LAST_NAMES)} ({rng.choice(FIRST_NAMES)})"
            )
        else:
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        mid = f"y{year}-m{i + 1:04d}"
        joined = _join_date(rng, year)
        # Heavy tail: a few regulars make most of the sessions, many come once or twice.
        activity = rng.lognormvariate(0, 1.1)
        weights = {}
        for machine, affinity in AFFINITY[cat].items():
            if rng.random() < min(0.9, 0.35 * affinity + 0.1):
                weights[machine] = activity * affinity
        if not weights:
            best = max(AFFINITY[cat], key=AFFINITY[cat].__getitem__)
            weights[best] = activity * AFFINITY[cat][best]
        end = max(joined, date(year, 1, 1)) + timedelta(days=365 + rng.randrange(60))
        rows.append(
            (
                mid,
                name,
                cat,
                "active",
                end.isoformat(),
                0,
                f"{mid}@exemple.invalid",
                joined.isoformat(),
            )
        )
        members.append(_Member(mid, cat, joined, weights, []))
    return rows, members


def generate_year(
    db_path: Path | str, year: int, *, seed: int = 2026, members: int = 620, scale: float = 1.0
) -> YearSummary:
    """Write a year of demo activity into the hub database at ``db_path``.

    The demo's groups, machines and fictitious members are added first (so the year sits
    beside the live demo's data); generated ids start with ``y<year>-``, and rows already
    there are left alone, so running it twice changes nothing. ``scale`` multiplies the
    demand (about 15,000 sessions at 1.0); sessions never overlap on a machine and start
    within opening hours, so a year saturates near 23,000 sessions whatever the scale.
    """
    rng = random.Random(f"{seed}/{year}")
    zone = ZoneInfo(TIMEZONE)
    hours = parse_opening_hours(OPENING_HOURS)
    machines = {m["id"]: m for m in MACHINES}
    group_of = {m["id"]: m["group"] for m in MACHINES}
    validity = {g["id"]: g["default_validity_months"] for g in GROUPS}

    member_rows, people = _members(rng, year, members)
    # Staff certify people; the demo's Karim is one of them.
    staff = ["m-karim"] + [p.id for p in people if p.category == "professionnel"][:2]
    project_rows = []
    for p in people:
        chance = 0.7 if p.category in ("scolaire", "association") else 0.3
        for k in range(2 if rng.random() < 0.25 else 1):
            if rng.random() < chance:
                pid = f"{p.id}-p{k + 1}"
                p.projects.append(pid)
                project_rows.append((pid, p.id, rng.choice(PROJECT_NAMES)))
    people.sort(key=lambda p: p.joined)
    joined = [p.joined for p in people]
    cumulative: dict[str, list[float]] = {}
    for machine in machines:
        total, cum = 0.0, []
        for p in people:
            total += p.weights.get(machine, 0.0)
            cum.append(total)
        cumulative[machine] = cum

    sessions: list[SessionRow] = []
    jobs: list[JobRow] = []
    first_use: dict[tuple[str, str], datetime] = {}
    n = 0
    for day in _open_days(year):
        slots = _slots(day, hours, zone)
        if not slots:
            continue
        factor = MONTH_FACTOR[day.month - 1] * WEEKDAY_FACTOR[day.weekday()] * scale
        eligible = bisect_right(joined, day)
        if eligible == 0:
            continue
        for machine, prof in PROFILES.items():
            cum = cumulative[machine]
            if cum[eligible - 1] <= 0:
                continue
            count = _poisson(rng, prof.per_day * factor)
            lengths = [
                min(prof.max_min, rng.lognormvariate(math.log(prof.median_min), prof.sigma))
                for _ in range(count)
            ]
            open_min = sum((b - a).total_seconds() / 60 for a, b in slots)
            free = max(0.0, open_min - sum(lengths))
            cuts = sorted(rng.random() * free for _ in range(count))
            gaps = [b - a for a, b in zip([0.0, *cuts], cuts, strict=False)]
            pos, busy_until = 0.0, slots[0][0]
            for gap, length in zip(gaps, lengths, strict=True):
                pos += gap
                start = _open_at(slots, max(_at(slots, pos), busy_until))
                if start is None:
                    break
                start += timedelta(seconds=rng.randrange(60))
                duration = length * 60.0
                end = start + timedelta(seconds=duration)
                pos += length
                busy_until = end + timedelta(minutes=1)
                person = people[bisect_right(cum, rng.random() * cum[eligible - 1])]
                n += 1
                sid = f"y{year}-s{n:06d}"
                project = (
                    rng.choice(person.projects) if person.projects and rng.random() < 0.75 else None
                )
                busy = duration * min(0.98, max(0.05, rng.gauss(prof.busy_share, 0.12)))
                busy_min, idle_min = split_minutes(duration, busy)
                job_count = rng.randint(*prof.jobs)
                sessions.append(
                    (
                        sid,
                        machine,
                        machine,
                        person.id,
                        f"Y{n:07X}",
                        project,
                        iso(start),
                        iso(end),
                        duration,
                        billable_minutes(duration),
                        prof.end_reason,
                        "closed",
                        iso(start),
                        busy,
                        duration - busy,
                        busy_min,
                        idle_min,
                        job_count,
                    )
                )
                key = (person.id, group_of[machine])
                first_use.setdefault(key, start)
                _jobs(
                    rng,
                    jobs,
                    sid,
                    machine,
                    person.id,
                    project,
                    start,
                    duration,
                    busy,
                    job_count,
                    prof.job_ext,
                )

    certifications = _certifications(rng, first_use, people, staff, validity, year)
    with HubStore(db_path) as store:
        sync_catalogue(
            store,
            [GroupConfig(g["id"], g["name"], g["default_validity_months"]) for g in GROUPS],
            [
                MachineConfig(m["id"], m["name"], m["kind"], m["group"], m["min_level"])
                for m in MACHINES
            ],
        )
        import_seed(store, load_seed(_demo_seed()))
        with store.atomic():
            add_members(store, member_rows)
            mark_staff(store, staff)
            add_badges(
                store, [(f"B{year % 100:02d}{i:05X}", r[0]) for i, r in enumerate(member_rows)]
            )
            add_projects(store, project_rows)
            add_certifications(store, certifications)
            add_closed_sessions(store, sessions)
            add_jobs(store, jobs)
    return YearSummary(
        len(member_rows),
        len(sessions),
        len(jobs),
        len(project_rows),
        len(certifications),
        sum(s[8] for s in sessions) / 3600,
    )


def _demo_seed() -> Path:
    with resources.as_file(resources.files("gateway").joinpath("data/demo-seed.yaml")) as p:
        return Path(p)


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method is fine for the small means of a day at one machine."""
    if mean <= 0:
        return 0
    limit, k, prod = math.exp(-mean), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


def _at(slots: Sequence[tuple[datetime, datetime]], minutes: float) -> datetime:
    """The instant ``minutes`` of opening time after the day opens (lunch skipped)."""
    for a, b in slots:
        span = (b - a).total_seconds() / 60
        if minutes < span:
            return a + timedelta(minutes=minutes)
        minutes -= span
    return slots[-1][1]


def _open_at(slots: Sequence[tuple[datetime, datetime]], t: datetime) -> datetime | None:
    """``t`` if the lab is open then, else the next opening; None after closing time."""
    for a, b in slots:
        if t < b:
            return max(a, t)
    return None


def _jobs(
    rng: random.Random,
    out: list[JobRow],
    sid: str,
    machine: str,
    member: str,
    project: str | None,
    start: datetime,
    duration: float,
    busy: float,
    count: int,
    ext: str,
) -> None:
    """The session's jobs, one after the other inside its busy time."""
    each = busy / count
    slack = (duration - busy) / (count + 1)
    t = start
    for i in range(count):
        t += timedelta(seconds=slack)
        end = t + timedelta(seconds=each)
        r = rng.random()
        state = "finished" if r < 0.92 else "failed" if r < 0.96 else "cancelled"
        progress = 1.0 if state == "finished" else round(rng.uniform(0.05, 0.95), 2)
        out.append(
            (
                f"{sid}-j{i + 1}",
                machine,
                machine,
                sid,
                member,
                project,
                f"piece-{rng.randrange(1000):03d}.{ext}",
                state,
                progress,
                0.0,
                "",
                iso(t),
                iso(end),
                iso(end),
            )
        )
        t = end


def _certifications(
    rng: random.Random,
    first_use: dict[tuple[str, str], datetime],
    people: list[_Member],
    staff: list[str],
    validity: dict[str, int],
    year: int,
) -> list[CertificationRow]:
    """A certification before every member's first use of a group's machines.

    Members who were there before the year were mostly certified earlier; newcomers are
    trained in the days before their first session, in the evening.
    """
    by_id = {p.id: p for p in people}
    zone = ZoneInfo(TIMEZONE)
    rows = []
    for (member, group), first in sorted(first_use.items()):
        person = by_id[member]
        first_day = first.astimezone(zone).date()
        if person.joined.year < year and rng.random() < 0.6:
            day = person.joined + timedelta(days=rng.randrange(60))
        else:
            day = max(person.joined, first_day - timedelta(days=rng.randrange(12)))
        when = datetime.combine(day, time(18, 30), zone).astimezone(UTC)
        when = min(when, first - timedelta(minutes=5))
        level = 1 if (person.category == "scolaire" and group == "printing") else 2
        if member in staff or rng.random() < 0.03:
            level = 3
        expires = when + timedelta(days=round(validity[group] * 30.44))
        revoked = (
            iso(when + timedelta(days=rng.randrange(30, 200))) if rng.random() < 0.01 else None
        )
        rows.append((member, group, level, rng.choice(staff), iso(when), iso(expires), revoked))
    return rows
