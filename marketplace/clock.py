"""The business's calendar: dates such as "today" are London dates."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from marketplace.db import utcnow

BUSINESS_ZONE = ZoneInfo("Europe/London")


def business_today(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(BUSINESS_ZONE).date()
