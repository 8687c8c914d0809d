"""Per-agent request and token budgets: two token buckets per agent, refilled continuously.

A bucket holds up to a minute's allowance and refills at allowance/60 per second, so an agent may burst
a whole minute's worth and then runs at the steady rate. The token bucket is charged in two steps:
``admit`` reserves the request's ``max_tokens`` (nothing is known of the answer yet), and ``settle``
replaces the reservation with the tokens the response actually used, which may leave the bucket in
debt (below zero) until it refills. A request the gateway itself refuses after admitting it (a detector
blocked it, the audit log was down) gets its reservation back through ``release``.

Every operation is O(1) under one lock. Limits are per gateway process: N replicas behind a load
balancer allow N times the configured rate, and a restart forgets the buckets.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from policies.gateway import RateLimits

__all__ = ["Denial", "RateLimiter"]


@dataclass(frozen=True)
class Denial:
    """Why a request is over budget, and when it could pass (None: never, it asks for more than a full bucket)."""

    reason: str
    retry_after_s: float | None


@dataclass
class _Bucket:
    capacity: float
    level: float
    stamp: float

    def refill(self, now: float, capacity: float) -> None:
        """Add what accrued since the last look; a changed limit takes effect from now on."""
        self.level = min(capacity, self.level + max(0.0, now - self.stamp) * capacity / 60.0)
        self.capacity, self.stamp = capacity, now

    def wait_for(self, amount: float) -> float:
        return max(0.0, (amount - self.level) * 60.0 / self.capacity)


@dataclass(frozen=True)
class _Reservation:
    agent: str
    tokens: int
    expires: float


class RateLimiter:
    """The buckets of one gateway process, keyed by agent name."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, reservation_ttl_s: float = 900.0) -> None:
        """``reservation_ttl_s``: how long a reservation waits for its response before it is forgotten (it then
        stays charged in full), which bounds the memory an abandoned flow holds."""
        self._clock = clock
        self._ttl = reservation_ttl_s
        self._lock = threading.Lock()
        self._requests: dict[str, _Bucket] = {}
        self._tokens: dict[str, _Bucket] = {}
        self._reserved: OrderedDict[str, _Reservation] = OrderedDict()

    def admit(self, agent: str, request_id: str, limits: RateLimits, reserve_tokens: int = 0) -> Denial | None:
        """Charge one request and reserve ``reserve_tokens``, or charge nothing and say why not."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            requests = self._bucket(self._requests, agent, limits.requests_per_minute, now)
            tokens = self._bucket(self._tokens, agent, limits.tokens_per_minute, now)
            if requests is not None and requests.level < 1:
                return Denial(f"over {limits.requests_per_minute} requests per minute", requests.wait_for(1))
            if tokens is not None:
                if reserve_tokens > tokens.capacity:
                    reason = f"max_tokens {reserve_tokens} is more than {limits.tokens_per_minute} tokens per minute"
                    return Denial(reason, None)
                if tokens.level <= 0 or tokens.level < reserve_tokens:
                    wait = tokens.wait_for(max(reserve_tokens, 1))
                    return Denial(f"over {limits.tokens_per_minute} tokens per minute", wait)
            if requests is not None:
                requests.level -= 1
            if tokens is not None:
                tokens.level -= reserve_tokens
                self._reserved.pop(request_id, None)
                self._reserved[request_id] = _Reservation(agent, reserve_tokens, now + self._ttl)
            return None

    def settle(self, request_id: str, used_tokens: int) -> None:
        """Replace a request's reservation by the tokens it used (unknown or already settled ids: nothing)."""
        self._adjust(request_id, lambda reserved: reserved - used_tokens)

    def release(self, request_id: str) -> None:
        """Give back a request's whole reservation: the gateway refused it after admitting it."""
        self._adjust(request_id, lambda reserved: reserved)

    def _adjust(self, request_id: str, refund: Callable[[int], int]) -> None:
        with self._lock:
            now = self._clock()
            self._expire(now)
            reservation = self._reserved.pop(request_id, None)
            bucket = None if reservation is None else self._tokens.get(reservation.agent)
            if reservation is None or bucket is None:
                return
            bucket.refill(now, bucket.capacity)
            bucket.level = min(bucket.capacity, bucket.level + refund(reservation.tokens))

    def _expire(self, now: float) -> None:
        while self._reserved:
            request_id, reservation = next(iter(self._reserved.items()))
            if reservation.expires > now:
                return
            del self._reserved[request_id]

    @staticmethod
    def _bucket(buckets: dict[str, _Bucket], agent: str, per_minute: int | None, now: float) -> _Bucket | None:
        if per_minute is None:
            buckets.pop(agent, None)
            return None
        bucket = buckets.get(agent)
        if bucket is None:
            bucket = buckets[agent] = _Bucket(per_minute, per_minute, now)
        else:
            bucket.refill(now, per_minute)
        return bucket
