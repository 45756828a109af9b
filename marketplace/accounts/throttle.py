"""Password guesses, counted in one place for every way to present a password: the API login,
the back-office sign-in, and the current password a signed-in request confirms (changing the
password, erasing the account). See docs/accounts-and-security.md for the numbers.

Each attempt takes a place before the password is checked (under a short lock per account, so
concurrent attempts cannot all pass one check), and gives it back if the password was right.
Refused before the password is checked, whatever it is:

- one client (IPv4 address or IPv6 /64) on one account: `RATELIMIT_FAILED_LOGIN`;
- one client over every account: `RATELIMIT_FAILED_LOGIN_ADDRESS` (a ceiling);
- one account from anywhere: `RATELIMIT_FAILED_LOGIN_ACCOUNT` (ASVS V2.2.1);
- a site (IPv4 address or IPv6 /48) that has failed on the account within the hour, while the
  account's delay runs: after `LOGIN_DELAY_AFTER_FAILURES` failures in a row (since the last
  right password) each further one makes the next wait 1, 2, 4 ... seconds, at most
  `LOGIN_DELAY_MAX_SECONDS`. A site new to the account is not delayed: its owner, with the right
  password, gets in while someone elsewhere keeps guessing.

The counters live in the rate-limit storage (Redis, or memory in one process). If Redis cannot
be reached, password checks are refused (503): never counted somewhere else.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis
from limits import parse_many

from marketplace.addresses import client_key, client_site
from marketplace.errors import DomainError

RECENT = 3600.0  # a site that failed on an account this recently is no longer new to it
LOCK_SECONDS = 2.0  # the longest one attempt holds its account's lock


class TooManyAttempts(DomainError):
    status = 429
    code = "rate_limited"
    message = "Too many attempts. Try again later."

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many attempts. Try again in {retry_after} seconds.")
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


class LimitsUnavailable(DomainError):
    status = 503
    code = "service_unavailable"
    message = "Passwords cannot be checked just now. Try again in a minute."

    def __init__(self) -> None:
        super().__init__()
        self.headers = {"Retry-After": "60"}


def account_digest(email: str) -> str:
    """The key of the account an email names (a hash: the storage and its logs never hold the
    email). Total: a lone surrogate (JSON can carry one) is hashed as it is."""
    normalised = email.strip().lower().encode("utf-8", "surrogatepass")
    return hashlib.sha256(normalised).hexdigest()[:32]


Limits = tuple[tuple[int, float], ...]  # (how many, in how many seconds)


def _limits(text: str) -> Limits:
    return tuple((item.amount, float(item.get_expiry())) for item in parse_many(text))


@dataclass(frozen=True)
class ThrottlePolicy:
    per_client_and_account: Limits
    per_account: Limits
    per_client: Limits
    delay_after: int = 10
    first_delay: float = 1.0
    max_delay: float = 300.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ThrottlePolicy:
        return cls(
            per_client_and_account=_limits(config["RATELIMIT_FAILED_LOGIN"]),
            per_account=_limits(config["RATELIMIT_FAILED_LOGIN_ACCOUNT"]),
            per_client=_limits(config["RATELIMIT_FAILED_LOGIN_ADDRESS"]),
            delay_after=int(config["LOGIN_DELAY_AFTER_FAILURES"]),
            max_delay=float(config["LOGIN_DELAY_MAX_SECONDS"]),
        )

    @property
    def retention(self) -> float:
        windows = [w for _, w in self.per_client_and_account + self.per_account + self.per_client]
        return max([RECENT, *windows])

    def delay(self, failures_in_a_row: int) -> float:
        """How long after the last of these failures the next attempt waits."""
        if failures_in_a_row < self.delay_after:
            return 0.0
        exponent = min(failures_in_a_row - self.delay_after, 62)
        return float(min(self.first_delay * 2**exponent, self.max_delay))


def _wait(times: Sequence[float], limits: Limits, now: float) -> float:
    """Seconds until one more failure fits every limit, given failure times (ascending)."""
    wait = 0.0
    for amount, window in limits:
        recent = [moment for moment in times if moment > now - window]
        if len(recent) >= amount:
            wait = max(wait, recent[len(recent) - amount] + window - now)
    return wait


class FailureStore(Protocol):
    """Sets of (member, time) per key; every method may raise LimitsUnavailable."""

    def lock(self, name: str) -> Any: ...
    def times(self, key: str, since: float) -> list[float]: ...
    def add(self, keys: Sequence[str], member: str, at: float, retention: float) -> None: ...
    def discard(self, keys: Sequence[str], member: str) -> None: ...
    def clear(self, keys: Sequence[str]) -> None: ...
    def reset(self) -> None: ...


@dataclass
class MemoryFailureStore:
    """One process's counters: the embedded default and the tests."""

    sets: dict[str, dict[str, float]] = field(default_factory=dict)
    guard: threading.RLock = field(default_factory=threading.RLock)

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        with self.guard:
            yield

    def times(self, key: str, since: float) -> list[float]:
        with self.guard:
            return sorted(t for t in self.sets.get(key, {}).values() if t >= since)

    def add(self, keys: Sequence[str], member: str, at: float, retention: float) -> None:
        with self.guard:
            for key in keys:
                entries = self.sets.setdefault(key, {})
                entries[member] = at
                for old in [m for m, t in entries.items() if t < at - retention]:
                    del entries[old]

    def discard(self, keys: Sequence[str], member: str) -> None:
        with self.guard:
            for key in keys:
                self.sets.get(key, {}).pop(member, None)

    def clear(self, keys: Sequence[str]) -> None:
        with self.guard:
            for key in keys:
                self.sets.pop(key, None)

    def reset(self) -> None:
        with self.guard:
            self.sets.clear()


_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"


class RedisFailureStore:
    """Counters every web process shares: a sorted set of failure times per key."""

    def __init__(self, client: redis.Redis, prefix: str = "login:") -> None:
        self.client = client
        self.prefix = prefix
        self._release = client.register_script(_RELEASE)

    @classmethod
    def from_url(cls, url: str) -> RedisFailureStore:
        return cls(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1))

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        key, token = f"{self.prefix}lock:{name}", uuid.uuid4().hex
        deadline = time.monotonic() + LOCK_SECONDS
        try:
            while not self.client.set(key, token, nx=True, px=int(LOCK_SECONDS * 1000)):
                if time.monotonic() > deadline:
                    raise TooManyAttempts(1)
                time.sleep(0.005)
        except redis.RedisError as exc:
            raise LimitsUnavailable() from exc
        try:
            yield
        finally:
            with suppress(redis.RedisError):  # else it expires by itself within LOCK_SECONDS
                self._release(keys=[key], args=[token])

    def times(self, key: str, since: float) -> list[float]:
        try:
            entries = self.client.zrangebyscore(self.prefix + key, since, "+inf", withscores=True)
        except redis.RedisError as exc:
            raise LimitsUnavailable() from exc
        return [float(entry[1]) for entry in entries]

    def add(self, keys: Sequence[str], member: str, at: float, retention: float) -> None:
        pipe = self.client.pipeline()
        for key in keys:
            pipe.zadd(self.prefix + key, {member: at})
            pipe.zremrangebyscore(self.prefix + key, "-inf", f"({at - retention}")
            pipe.expire(self.prefix + key, math.ceil(retention))
        self._run(pipe)

    def discard(self, keys: Sequence[str], member: str) -> None:
        pipe = self.client.pipeline()
        for key in keys:
            pipe.zrem(self.prefix + key, member)
        self._run(pipe)

    def clear(self, keys: Sequence[str]) -> None:
        self._run_command(lambda: self.client.delete(*[self.prefix + key for key in keys]))

    def reset(self) -> None:
        for key in self.client.scan_iter(f"{self.prefix}*"):
            self.client.delete(key)

    @staticmethod
    def _run(pipe: Any) -> None:
        try:
            pipe.execute()
        except redis.RedisError as exc:
            raise LimitsUnavailable() from exc

    @staticmethod
    def _run_command(command: Callable[[], Any]) -> None:
        try:
            command()
        except redis.RedisError as exc:
            raise LimitsUnavailable() from exc


def failure_store(storage_uri: str) -> FailureStore:
    if storage_uri.startswith(("redis://", "rediss://")):
        return RedisFailureStore.from_url(storage_uri)
    if storage_uri.startswith("memory://"):
        return MemoryFailureStore()
    raise ValueError("RATELIMIT_STORAGE_URI must be memory:// or redis:// (password checks)")


@dataclass(frozen=True)
class _Keys:
    account: str
    client: str
    site: str

    @property
    def failures(self) -> list[str]:
        """Every set a failure of this attempt is counted in."""
        return [self.of_account, self.of_client, self.of_client_and_account, self.of_site]

    @property
    def of_account(self) -> str:
        return f"account:{self.account}"

    @property
    def of_client(self) -> str:
        return f"client:{self.client}"

    @property
    def of_client_and_account(self) -> str:
        return f"client-account:{self.client}|{self.account}"

    @property
    def of_site(self) -> str:
        return f"site-account:{self.site}|{self.account}"

    @property
    def right_password(self) -> str:
        return f"right:{self.account}"


@dataclass
class Attempt:
    throttle: LoginThrottle
    keys: _Keys
    member: str

    def right(self) -> None:
        """The password was right: not a failure, the account's run of failures ends, and this
        client starts afresh on the account."""
        store = self.throttle.store
        store.discard(self.keys.failures, self.member)
        store.clear([self.keys.of_client_and_account, self.keys.of_site])
        store.add(
            [self.keys.right_password],
            "last",
            self.throttle.clock(),
            self.throttle.policy.retention,
        )

    def not_checked(self) -> None:
        """The check never happened (the request failed for another reason): not a failure."""
        self.throttle.store.discard(self.keys.failures, self.member)


class LoginThrottle:
    def __init__(
        self,
        store: FailureStore,
        policy: Callable[[], ThrottlePolicy],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._policy = policy  # read at every attempt: settings may change while running
        self.clock = clock

    @property
    def policy(self) -> ThrottlePolicy:
        return self._policy()

    def begin(self, email: str, address: str | None) -> Attempt:
        """Take a place for one password check of the account `email` names from the client at
        `address`, counted as a failure until `Attempt.right`; TooManyAttempts if none is free."""
        keys = _Keys(account_digest(email), client_key(address), client_site(address))
        with self.store.lock(keys.account):
            now = self.clock()
            wait = self.wait(keys, now)
            if wait > 0:
                raise TooManyAttempts(max(1, math.ceil(wait)))
            member = uuid.uuid4().hex
            self.store.add(keys.failures, member, now, self.policy.retention)
        return Attempt(self, keys, member)

    def wait(self, keys: _Keys, now: float) -> float:
        policy, since = self.policy, now - self.policy.retention
        account = self.store.times(keys.of_account, since)
        wait = max(
            _wait(self.store.times(keys.of_client, since), policy.per_client, now),
            _wait(
                self.store.times(keys.of_client_and_account, since),
                policy.per_client_and_account,
                now,
            ),
            _wait(account, policy.per_account, now),
        )
        if self.store.times(keys.of_site, now - RECENT):  # this site has failed here before
            right = self.store.times(keys.right_password, since)
            last_right = max(right, default=since)
            in_a_row = [moment for moment in account if moment > max(last_right, now - RECENT)]
            if in_a_row:
                delay_ends = in_a_row[-1] + policy.delay(len(in_a_row))
                wait = max(wait, delay_ends - now)
        return wait
