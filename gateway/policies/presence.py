"""Staff presence: how long a staff check-in lasts, and which taps check staff in or out.

Supervised (level 1) use needs a staff member on site, but nobody remembers to check out.
So a check-in lasts until the end of the current opening period (or the end of the local
day, when staff come in outside opening hours): presence then expires by itself.

Opening hours are wall-clock times of the site, so every computation goes through the
site's IANA zone. A wall time the clock shows twice (autumn) means its first occurrence;
a wall time the clock skips (spring) lands as far past the jump as it was past the
last valid time (PEP 495, ``fold=0``). A slot closing at 00:00 closes at midnight.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from gateway.core.snapshot import MemberGrant, OpeningHours, Snapshot
from gateway.policies.access import Action, Decision

__all__ = ["presence_until", "staff_present", "staff_toggle"]

_Span = tuple[datetime, datetime]


def _utc(now: datetime) -> datetime:
    """Compare in UTC only: Python compares two datetimes sharing a tzinfo by wall time,
    ignoring ``fold``, which is wrong exactly on the DST days this module must get right."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware: opening hours are in the site's zone")
    return now.astimezone(UTC)


def _instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, wall, tzinfo=zone).astimezone(UTC)


def _next_midnight(day: date, zone: ZoneInfo) -> datetime:
    return _instant(day + timedelta(days=1), time(0), zone)


def _day_spans(hours: OpeningHours, day: date, zone: ZoneInfo) -> list[_Span]:
    """The day's slots as absolute instants; a slot that is empty on this day is dropped.

    Going to instants before comparing is what makes DST days right: the wall clock is
    not monotonic on those days, the instants are.
    """
    midnight = _next_midnight(day, zone)
    spans = []
    for opens, closes in hours.get(day.weekday(), ()):
        start = _instant(day, opens, zone)
        end = midnight if closes == time(0) else _instant(day, closes, zone)
        if end > start:
            spans.append((start, end))
    return spans


def _merge(spans: Iterable[_Span]) -> list[_Span]:
    """Touching or overlapping slots are one opening period.

    Otherwise a check-in at 11:00 with slots 10-12 and 12-14 would expire at noon while
    the lab stays open without a break.
    """
    merged: list[_Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def presence_until(hours: OpeningHours, tz: str, now: datetime) -> datetime:
    """When a staff check-in made at ``now`` stops counting.

    The end of the opening period containing ``now``; outside opening hours, the end of
    the next period starting later today; otherwise the next local midnight. The result
    is in ``now``'s timezone and always strictly after ``now``.
    """
    now_utc = _utc(now)
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    for _start, end in _merge(_day_spans(hours, today, zone)):
        if end > now_utc:
            # Either the period containing now or, now being before it, the next one today.
            return end.astimezone(now.tzinfo)
    return _next_midnight(today, zone).astimezone(now.tzinfo)


def staff_present(snapshot: Snapshot | None, local_until: datetime | None, now: datetime) -> bool:
    """Staff count as present if the hub says so or if a staff tap on this node said so.

    The local check-in matters because the hub may not have answered yet (or be
    unreachable): a trainer who just tapped in must not have to wait for a snapshot.
    """
    now_utc = _utc(now)
    hub_until = snapshot.staff_present_until if snapshot is not None else None
    return any(until is not None and _utc(until) > now_utc for until in (hub_until, local_until))


def staff_toggle(member: MemberGrant, decision: Decision, locally_present: bool) -> bool | None:
    """Presence change caused by a tap: True checks in, False checks out, None no change.

    A staff member starting a machine is evidently on site, ending a session means they
    are leaving it; any other tap of theirs (e.g. on a machine they do not use) flips
    their presence, so a staff badge doubles as a check-in/check-out card.
    """
    if not member.staff or member.status != "active":
        return None
    if decision.action is Action.START:
        return True
    if decision.action is Action.END:
        return False
    return not locally_present
