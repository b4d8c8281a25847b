"""Login rate limits: per (user, client) lock-out, per-client cap, per-user exponential back-off.

Pure bookkeeping (no I/O, no asyncio); the login mutation drives it:

    attempt = limiter.begin(username, client)   # raises LoginThrottled(retry_after_s)
    ... check the password ...
    limiter.succeeded(attempt)  # or .failed(attempt), or .release(attempt) if no check happened

`begin` reserves the attempt *before* the password is checked: an attempt in flight counts
as a failure against the limits, so concurrent guesses are counted as they start (40 in
parallel against a limit of 5 get 5 checks); a success forgets the pair's failures.

- A (user, client) pair is locked after `per_pair` failures within `window_s`: an attacker
  locks out only their own client, never the user elsewhere.
- A client is locked after `per_client` failures within `window_s`, whatever the user names.
- A user with `user_free` or more failures within `window_s` (from any clients: a distributed
  guesser) is in back-off: a client that has already failed for this user waits
  `backoff_base_s * 2 ** (failures - user_free)` (at most `window_s`) after the user's latest
  failure. A client without a failure for this user in the window is let through, so the
  user, from a clean client, logs in at once; each such client gets one guess per back-off
  period, then waits like the others. A guesser therefore needs a fresh address per guess.
- Memory is bounded: each table keeps at most `max_entries` keys (least recently used go
  first) and forgets keys whose failures are older than `window_s`. The caller passes user
  names of at most 64 printable characters (see `plausible_username`).

The `limits` library was considered: it counts hits in fixed or moving windows, but has no
reservation taken back on success and no back-off, which are the point here.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass

MAX_USERNAME = 64
INVALID_USERNAME = "(invalid user name)"  # the key of every implausible name (no user can have it)
IN_FLIGHT_RETRY_S = 1.0


def plausible_username(name: str) -> bool:
    """A name that could be a user's (1-64 printable characters); anything else is refused
    with the ordinary failure, without hashing and without keeping the name."""
    return 0 < len(name) <= MAX_USERNAME and name.isprintable()


class LoginThrottled(Exception):
    """Too many failed logins: try again in `retry_after_s` seconds."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"too many failed logins: retry in {retry_after_s:.1f} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """An admitted attempt: counts as a failure until `succeeded`, `failed` or `release`."""

    username: str
    client: str
    at: float


class _Failures:
    """Key -> recent failure times, least recently used first, at most `max_entries` keys."""

    def __init__(self, window_s: float, max_entries: int, per_key: int) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self.per_key = per_key
        self._table: OrderedDict[object, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._table)

    def keys(self) -> list[object]:
        return list(self._table)

    def recent(self, key: object, now: float) -> deque[float]:
        """The key's failures within the window (an empty deque when none; nothing is stored)."""
        q = self._table.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q:
            del self._table[key]
        return q

    def add(self, key: object, at: float) -> None:
        q = self._table.get(key)
        if q is None:
            q = self._table[key] = deque(maxlen=self.per_key)
        q.append(at)
        self._table.move_to_end(key)
        while len(self._table) > self.max_entries:
            self._table.popitem(last=False)

    def forget(self, key: object) -> None:
        self._table.pop(key, None)

    def expire(self, now: float, budget: int | None = 8) -> None:
        """Drop up to `budget` (None: all) least recently used keys whose failures are all out
        of the window. Each attempt adds at most one key per table and drops up to 8 stale ones."""
        n = 0
        while budget is None or n < budget:
            oldest = next(iter(self._table.items()), None)
            if oldest is None or (oldest[1] and oldest[1][-1] > now - self.window_s):
                return
            self._table.popitem(last=False)
            n += 1


class LoginLimiter:
    def __init__(
        self,
        *,
        per_pair: int = 5,
        per_client: int = 20,
        user_free: int = 10,
        backoff_base_s: float = 1.0,
        window_s: float = 300.0,
        max_entries: int = 10_000,
    ) -> None:
        self.per_pair = per_pair
        self.per_client = per_client
        self.user_free = user_free
        self.backoff_base_s = backoff_base_s
        self.window_s = window_s
        # a user's failure count only matters up to where the back-off reaches its cap
        cap = user_free + max(0, int(window_s / backoff_base_s).bit_length()) + 1
        self._pairs = _Failures(window_s, max_entries, per_pair)
        self._clients = _Failures(window_s, max_entries, per_client)
        self._users = _Failures(window_s, max_entries, cap)
        # attempts being checked now, per pair and per client (removed at 0: bounded by concurrency)
        self._pending: dict[object, int] = {}

    def _expire_all(self, now: float | None) -> None:
        now = time.monotonic() if now is None else now
        for table in (self._pairs, self._clients, self._users):
            table.expire(now, None)

    def size(self, now: float | None = None) -> int:
        """Keys held in all tables (at most 3 x max_entries)."""
        self._expire_all(now)
        return len(self._pairs) + len(self._clients) + len(self._users)

    def tracked_users(self, now: float | None = None) -> list[str]:
        """User names with failures in the window."""
        self._expire_all(now)
        return [str(k) for k in self._users.keys()]  # noqa: SIM118 (a _Failures, not a dict)

    def begin(self, username: str, client: str, now: float | None = None) -> LoginAttempt:
        """Admit and reserve one attempt, or raise LoginThrottled. An attempt in flight counts
        as a failure until it ends; a refusal caused only by attempts in flight says to retry
        in `IN_FLIGHT_RETRY_S`."""
        now = time.monotonic() if now is None else now
        for table in (self._pairs, self._clients, self._users):
            table.expire(now)
        pair = (username, client)
        waits = [0.0]
        pair_failures = self._pairs.recent(pair, now)
        client_failures = self._clients.recent(client, now)
        for failures, key, limit in ((pair_failures, pair, self.per_pair), (client_failures, client, self.per_client)):
            if len(failures) >= limit:
                waits.append(failures[0] + self.window_s - now)
            elif len(failures) + self._pending.get(key, 0) >= limit:
                waits.append(IN_FLIGHT_RETRY_S)
        user_failures = self._users.recent(username, now)
        if (pair_failures or self._pending.get(pair)) and len(user_failures) >= self.user_free:
            delay = min(self.window_s, self.backoff_base_s * 2 ** (len(user_failures) - self.user_free))
            waits.append(max(user_failures[-1] + delay - now, IN_FLIGHT_RETRY_S if self._pending.get(pair) else 0.0))
        wait = max(waits)
        if wait > 0:
            raise LoginThrottled(wait)
        for key in (pair, client):
            self._pending[key] = self._pending.get(key, 0) + 1
        return LoginAttempt(username, client, now)

    def _end(self, attempt: LoginAttempt) -> None:
        for key in ((attempt.username, attempt.client), attempt.client):
            left = self._pending.get(key, 0) - 1
            if left > 0:
                self._pending[key] = left
            else:
                self._pending.pop(key, None)

    def failed(self, attempt: LoginAttempt, now: float | None = None) -> None:
        """The password was wrong (or the name absurd): the attempt is a failure."""
        self._end(attempt)
        now = time.monotonic() if now is None else now
        self._pairs.add((attempt.username, attempt.client), now)
        self._clients.add(attempt.client, now)
        self._users.add(attempt.username, now)

    def release(self, attempt: LoginAttempt) -> None:
        """The check did not happen (database down, cancelled): the attempt does not count."""
        self._end(attempt)

    def succeeded(self, attempt: LoginAttempt) -> None:
        """The password was right: the pair's failures are forgotten. The user's other
        failures are kept, so that a distributed guesser's back-off is not reset."""
        self._end(attempt)
        self._pairs.forget((attempt.username, attempt.client))
