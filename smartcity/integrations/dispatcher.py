"""The outbox dispatcher: claims due alert deliveries, sends them through their channel's
sender with the delivery's idempotency key, and records the outcome.

Transient failures (5xx, timeouts, broker away) are retried with exponential backoff; after
`max_attempts` a delivery is dead-lettered (replayable). A permanent failure is recorded and
the incident's next escalation step is made due at once (the next channel or recipient).
Deliveries of channels whose plug-in declares `rate_limited` (SMS, console) pass a
per-recipient rate limit. Business time (due times, rate
limits) comes from the injected Clock; waiting between polls is real time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from smartcity.core.clock import Clock
from smartcity.core.incidents import Claimed, DeliveryRecord, DeliveryState, IncidentRecord
from smartcity.fusion.policy import RateLimiter
from smartcity.fusion.store import DeliveryOutbox
from smartcity.integrations.channel import (
    AlertChannel,
    DeferDelivery,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    channel_class,
)
from smartcity.integrations.config import DispatcherConfig

log = logging.getLogger(__name__)

PENDING = DeliveryState.PENDING


def backoff_s(cfg: DispatcherConfig, attempts: int) -> float:
    """Delay before attempt `attempts + 1`: initial * 2^(attempts-1), capped."""
    return float(min(cfg.backoff_max_s, cfg.backoff_initial_s * 2 ** max(0, attempts - 1)))


class Dispatcher:
    """Sends due deliveries; `notify()` after an outbox commit wakes it at once."""

    def __init__(
        self,
        outbox: DeliveryOutbox,
        senders: Mapping[str, AlertChannel],
        cfg: DispatcherConfig,
        clock: Clock,
        limiter: RateLimiter,
    ) -> None:
        self.outbox = outbox
        self.senders = dict(senders)
        self.cfg = cfg
        self.clock = clock
        self.limiter = limiter
        self._wake = asyncio.Event()
        self._inflight: set[int] = set()
        self.sent = 0
        self.retried = 0
        self.failed = 0
        self.dead = 0
        self.suppressed = 0
        self.deferred = 0
        self._db_failing = False

    def notify(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Claim and send until cancelled; in-flight sends are cancelled with it (their
        deliveries stay pending and are sent again after their lease)."""
        async with asyncio.TaskGroup() as tg:
            while True:
                free = self.cfg.concurrency - len(self._inflight)
                claimed = await self._claim(min(free, self.cfg.claim_batch)) if free > 0 else []
                for c in claimed:
                    self._inflight.add(c.delivery.id)
                    tg.create_task(self._deliver(c), name=f"deliver:{c.delivery.id}")
                if claimed and len(claimed) == min(free, self.cfg.claim_batch):
                    continue  # more may be due
                self._wake.clear()
                try:
                    async with asyncio.timeout(self.cfg.poll_s):
                        await self._wake.wait()
                except TimeoutError:
                    pass

    async def _claim(self, n: int) -> list[Claimed]:
        try:
            claimed = await self.outbox.claim(self.clock.time(), self.cfg.lease_s, n)
        except Exception as exc:  # the database is away: log once, keep polling
            if not self._db_failing:
                self._db_failing = True
                log.error("alert dispatcher: cannot claim deliveries: %s: %s", type(exc).__name__, exc)
            return []
        if self._db_failing:
            self._db_failing = False
            log.warning("alert dispatcher: database reachable again")
        return claimed

    async def _deliver(self, c: Claimed) -> None:
        d, inc = c.delivery, c.incident
        try:
            await self._deliver_one(d, inc)
        except Exception:
            # Recording the outcome failed (database away): the lease brings it back.
            log.exception("alert dispatcher: delivery %d (%s) outcome not recorded", d.id, d.channel)
        finally:
            self._inflight.discard(d.id)
            self._wake.set()

    @staticmethod
    def _rate_limited(channel: str) -> bool:
        cls = channel_class(channel)  # the trait holds even where the channel is not configured
        return cls is not None and cls.rate_limited

    async def _deliver_one(self, d: DeliveryRecord, inc: IncidentRecord | None) -> None:
        now = self.clock.time()
        if inc is None:
            await self.outbox.finish(d.id, DeliveryState.FAILED, now, "incident no longer exists")
            self.failed += 1
            return
        if self._rate_limited(d.channel) and not self.limiter.allow(d.channel, d.target, now):
            await self.outbox.finish(d.id, DeliveryState.SUPPRESSED, now, "rate limited")
            self.suppressed += 1
            log.warning("alert to %s %s suppressed by the rate limit (incident %s)", d.channel, d.target, d.incident_id)
            return
        sender = self.senders.get(d.channel)
        try:
            if sender is None:
                raise PermanentDeliveryError(f"channel {d.channel} is not configured")
            async with asyncio.timeout(self.cfg.send_timeout_s):
                state = await sender.send(d, inc)
        except TimeoutError:
            await self._failed(d, TransientDeliveryError(f"timed out after {self.cfg.send_timeout_s} s"))
            return
        except DeferDelivery as exc:  # not a failure: due again later (or earlier, by the channel)
            await self.outbox.retry_at(d.id, exc.until, exc.reason)
            self.deferred += 1
            return
        except DeliveryError as exc:
            await self._failed(d, exc)
            return
        await self.outbox.finish(d.id, state, self.clock.time())
        self.sent += 1

    async def _failed(self, d: DeliveryRecord, exc: DeliveryError) -> None:
        now = self.clock.time()
        error = f"{type(exc).__name__}: {exc}"
        if not exc.permanent and d.attempts < self.cfg.max_attempts:
            self.retried += 1
            delay = backoff_s(self.cfg, d.attempts)
            log.info("alert %d via %s failed (attempt %d), retrying in %.2f s: %s", d.id, d.channel, d.attempts, delay, error)
            await self.outbox.retry_at(d.id, now + delay, error)
            self._wake.set()
            return
        if exc.permanent:
            self.failed += 1
            await self.outbox.finish(d.id, DeliveryState.FAILED, now, error, from_states=(PENDING,))
            log.error("alert %d via %s to %s failed permanently: %s", d.id, d.channel, d.target, error)
        else:
            self.dead += 1
            await self.outbox.finish(d.id, DeliveryState.DEAD, now, f"{d.attempts} attempts, last: {error}", from_states=(PENDING,))
            log.error("alert %d via %s to %s dead-lettered after %d attempts: %s", d.id, d.channel, d.target, d.attempts, error)
        nxt = await self.outbox.escalate_now(d.incident_id, now)
        if nxt is not None:
            log.warning("incident %s escalated to %s %s after a failed alert", d.incident_id, nxt.channel, nxt.target)
            self._wake.set()
