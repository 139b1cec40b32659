"""Epoch-millisecond helpers shared by both wire formats.

Everything inside the sandbox is an int of milliseconds since the epoch, UTC. Salesforce and HubSpot
spell datetimes differently, so the formatting lives here, once.
"""

from __future__ import annotations

import calendar
import functools
from datetime import UTC, date, datetime, timedelta

DAY_MS = 86_400_000


def to_ms(value: datetime | date) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp() * 1000)
    return calendar.timegm(value.timetuple()) * 1000


def from_ms(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def day_start(ms: int) -> int:
    return ms - ms % DAY_MS


def sf_datetime(ms: int | None) -> str | None:
    """Salesforce REST style: 2011-07-07T00:37:00.000+0000."""
    if ms is None:
        return None
    return f"{_clock(ms)}+0000"


def iso_date(ms: int | None) -> str | None:
    if ms is None:
        return None
    return _day(ms // DAY_MS)


def hs_datetime(ms: int | None) -> str | None:
    """HubSpot style: 2023-02-24T03:00:13.789Z."""
    if ms is None:
        return None
    return f"{_clock(ms)}Z"


def _clock(ms: int) -> str:
    # Every date of every record answered is spelled here (a history page is thousands): the day's text comes
    # from a small cache and the time of day from arithmetic, not strftime.
    days, rest = divmod(ms, DAY_MS)
    seconds, millis = divmod(rest, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{_day(days)}T{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}"


@functools.lru_cache(maxsize=8192)
def _day(days: int) -> str:
    return from_ms(days * DAY_MS).strftime("%Y-%m-%d")


def add_months(d: date, months: int) -> date:
    index = d.year * 12 + (d.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def parse_iso(text: str) -> int:
    """Parse an ISO datetime or date (Z, +hh:mm or +hhmm offsets) to epoch ms."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    if len(value) > 5 and value[-5] in "+-" and value[-3] != ":" and "T" in value:
        value = value[:-2] + ":" + value[-2:]
    if "T" not in value:
        return to_ms(date.fromisoformat(value))
    return to_ms(datetime.fromisoformat(value))
