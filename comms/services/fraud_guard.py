"""Fraud guard: pause an app's codes to a country whose codes are sent but never used (SMS pumping).

SMS pumping is paying to send codes to premium numbers that nobody will ever type in. Its signature
is conversion — verifications approved ÷ codes sent — collapsing in one country. Per app and country,
Redis keeps sends and approvals in :data:`BUCKET`-second buckets over the last :data:`WINDOW`. Before
each send, if at least ``fraud_guard_min_sends`` codes went there and approvals fall below
``fraud_guard_min_conversion`` of them, the country is paused for the app: the pause is a database row
(it must survive Redis, and it is the record an operator reads), active until ``until`` or until an
admin lifts it. Sends younger than :data:`GRACE` are not judged yet: their codes may still come back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..errors import CountryPaused, NotFound, ServiceUnavailable
from ..models import FraudGuardPause

WINDOW = 3600
BUCKET = 10
GRACE = 60
PREFIX = "comms:fg:"

# KEYS[1] the stats hash. ARGV: oldest bucket kept, newest bucket judged for sends, min sends,
# min conversion. Fields are "s:<bucket>" (sends) and "a:<bucket>" (approvals). Returns
# {1, sends, approvals} when this call trips the guard — the stats are reset, so of concurrent callers
# exactly one trips — else {0, sends, approvals}.
_JUDGE = """
local oldest, judged = tonumber(ARGV[1]), tonumber(ARGV[2])
local data = redis.call('HGETALL', KEYS[1])
local sends, approvals, stale = 0, 0, {}
for i = 1, #data, 2 do
  local b = tonumber(string.sub(data[i], 3))
  if b < oldest then
    stale[#stale + 1] = data[i]
  elseif string.sub(data[i], 1, 1) == 'a' then
    approvals = approvals + tonumber(data[i + 1])
  elseif b <= judged then
    sends = sends + tonumber(data[i + 1])
  end
end
if #stale > 0 then redis.call('HDEL', KEYS[1], unpack(stale)) end
if sends >= tonumber(ARGV[3]) and approvals < tonumber(ARGV[4]) * sends then
  redis.call('DEL', KEYS[1])
  return {1, sends, approvals}
end
return {0, sends, approvals}
"""
KEY_TTL = WINDOW + 2 * BUCKET


def _stats_key(app_id: str, country: str) -> str:
    return f"{PREFIX}{app_id}:{country}"


def _countries_key(app_id: str) -> str:
    return f"{PREFIX}{app_id}:countries"


def active_pause(session: Session, app_id: str, country: str, now: datetime) -> FraudGuardPause | None:
    return session.scalar(
        select(FraudGuardPause)
        .where(
            FraudGuardPause.app_id == app_id,
            FraudGuardPause.country == country,
            FraudGuardPause.lifted_at.is_(None),
            FraudGuardPause.until > now,
        )
        .order_by(FraudGuardPause.id.desc())
        .limit(1)
    )


def refuse_if_paused(session: Session, app_id: str, country: str, now: datetime) -> None:
    pause = active_pause(session, app_id, country, now)
    if pause is not None:
        raise _paused(pause, now)


def _paused(pause: FraudGuardPause, now: datetime) -> CountryPaused:
    return CountryPaused(
        f"Codes to {pause.country} are paused for this app until {pause.until.isoformat()}: "
        f"{pause.approvals} of {pause.sends} recent codes were used (fraud guard). An operator can lift it.",
        field="to",
        retry_after=max(1, math.ceil((pause.until - now).total_seconds())),
    )


def judge(
    session: Session,
    connection: redis.Redis,
    app_id: str,
    country: str,
    settings: Mapping[str, Any],
    now: datetime,
) -> None:
    """Pause the country when its judged sends convert too little (before this send is counted).

    Raises:
        CountryPaused: this call tripped the guard; the pause is already committed.
    """
    if not settings["fraud_guard"]:
        return
    ts = now.timestamp()
    # A bucket is judged once all of it is at least GRACE old: it ends by ts - GRACE.
    judged = 2**52 if GRACE <= 0 else int((ts - GRACE) // BUCKET) - 1
    args = [
        int((ts - WINDOW) // BUCKET),
        judged,
        int(settings["fraud_guard_min_sends"]),
        repr(float(settings["fraud_guard_min_conversion"])),
    ]
    try:
        tripped, sends, approvals = connection.register_script(_JUDGE)(
            keys=[_stats_key(app_id, country)], args=args
        )
    except redis.RedisError as exc:
        raise ServiceUnavailable("The fraud guard cannot be consulted right now; retry shortly.") from exc
    if not tripped:
        return
    pause = FraudGuardPause(
        app_id=app_id,
        country=country,
        sends=int(sends),
        approvals=int(approvals),
        conversion=round(int(approvals) / int(sends), 4),
        created_at=now,
        until=now + timedelta(seconds=int(settings["fraud_guard_pause"])),
    )
    session.add(pause)
    # The refusal below must not roll the pause back with the rest of the request.
    session.commit()
    raise _paused(pause, now)


def record_send(connection: redis.Redis, app_id: str, country: str, now: datetime) -> None:
    """Count a send that is going out (kept even while the guard is off, for the app's statistics)."""
    key = _stats_key(app_id, country)
    try:
        with connection.pipeline(transaction=False) as pipe:
            pipe.hincrby(key, f"s:{int(now.timestamp() // BUCKET)}", 1)
            pipe.expire(key, KEY_TTL)
            pipe.sadd(_countries_key(app_id), country)
            pipe.expire(_countries_key(app_id), KEY_TTL)
            pipe.execute()
    except redis.RedisError:
        pass  # the rate limits just passed, so Redis is up; a lost count only loosens the guard a little


def record_approval(connection: redis.Redis, app_id: str, country: str, now: datetime) -> None:
    key = _stats_key(app_id, country)
    try:
        with connection.pipeline(transaction=False) as pipe:
            pipe.hincrby(key, f"a:{int(now.timestamp() // BUCKET)}", 1)
            pipe.expire(key, KEY_TTL)
            pipe.execute()
    except redis.RedisError:
        pass  # a lost approval only makes the guard a little stricter for an hour


def stats(connection: redis.Redis, app_id: str, now: datetime) -> list[dict[str, Any]]:
    """Sends, approvals and conversion per country over the last window (all sends, judged or not)."""
    oldest = (now.timestamp() - WINDOW) // BUCKET
    countries = sorted(c.decode() for c in connection.smembers(_countries_key(app_id)))
    with connection.pipeline(transaction=False) as pipe:
        for country in countries:
            pipe.hgetall(_stats_key(app_id, country))
        hashes = pipe.execute()
    rows = []
    for country, data in zip(countries, hashes, strict=True):
        totals = {"s": 0, "a": 0}
        for field, value in data.items():
            kind, _, bucket = field.decode().partition(":")
            if int(bucket) >= oldest:
                totals[kind] += int(value)
        if totals["s"] or totals["a"]:
            conversion = round(totals["a"] / totals["s"], 4) if totals["s"] else None
            rows.append(
                {"country": country, "sends": totals["s"], "approvals": totals["a"], "conversion": conversion}
            )
    return rows


def pauses(session: Session, app_id: str, now: datetime, *, active: bool = True) -> list[FraudGuardPause]:
    query = select(FraudGuardPause).where(FraudGuardPause.app_id == app_id)
    if active:
        query = query.where(FraudGuardPause.lifted_at.is_(None), FraudGuardPause.until > now)
    return list(session.scalars(query.order_by(FraudGuardPause.id.desc()).limit(200)))


def lift(
    session: Session, connection: redis.Redis, app_id: str, country: str, lifted_by: str, now: datetime
) -> None:
    """End the country's active pause for the app and start its statistics afresh.

    Raises:
        NotFound: the country is not paused for the app.
    """
    result = session.execute(
        update(FraudGuardPause)
        .where(
            FraudGuardPause.app_id == app_id,
            FraudGuardPause.country == country,
            FraudGuardPause.lifted_at.is_(None),
            FraudGuardPause.until > now,
        )
        .values(lifted_at=now, lifted_by=lifted_by)
    )
    if result.rowcount == 0:
        raise NotFound(f"Codes to {country} are not paused for this app.")
    # Without the reset the next send would judge the same hour again and pause at once.
    try:
        connection.delete(_stats_key(app_id, country))
    except redis.RedisError as exc:
        raise ServiceUnavailable("The fraud guard cannot be reset right now; retry shortly.") from exc
