import threading

import pytest

from gateway.ratelimit import RateLimiter
from policies.gateway import RateLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock()


def admitted(limiter: RateLimiter, n: int, limits: RateLimits, agent: str = "a", reserve: int = 0) -> int:
    return sum(limiter.admit(agent, f"{agent}-{i}", limits, reserve) is None for i in range(n))


def test_requests_per_minute_burst_then_steady_rate(clock: Clock) -> None:
    limiter, limits = RateLimiter(clock=clock), RateLimits(requests_per_minute=60)
    assert admitted(limiter, 100, limits) == 60
    denial = limiter.admit("a", "x", limits)
    assert denial is not None and denial.reason == "over 60 requests per minute"
    assert denial.retry_after_s == pytest.approx(1.0)
    clock.now += 0.5
    assert limiter.admit("a", "y", limits) is not None
    clock.now += 0.5
    assert limiter.admit("a", "z", limits) is None and limiter.admit("a", "w", limits) is not None
    clock.now += 3600  # refills to the capacity, not beyond
    assert admitted(limiter, 100, limits) == 60


def test_agents_have_their_own_buckets(clock: Clock) -> None:
    limiter, limits = RateLimiter(clock=clock), RateLimits(requests_per_minute=2)
    assert admitted(limiter, 5, limits, "a") == 2 and admitted(limiter, 5, limits, "b") == 2


def test_no_limits_admit_everything(clock: Clock) -> None:
    assert admitted(RateLimiter(clock=clock), 10_000, RateLimits(), reserve=10**9) == 10_000


def test_max_tokens_is_reserved_and_settled_against_usage(clock: Clock) -> None:
    limiter, limits = RateLimiter(clock=clock), RateLimits(tokens_per_minute=1000)
    assert limiter.admit("a", "r1", limits, 600) is None
    denial = limiter.admit("a", "r2", limits, 600)  # 400 left
    assert denial is not None and denial.reason == "over 1000 tokens per minute"
    assert denial.retry_after_s == pytest.approx(12.0)  # 200 more tokens at 1000/min
    limiter.settle("r1", 100)  # used 100 of 600: 900 left
    assert limiter.admit("a", "r2", limits, 600) is None
    limiter.settle("r1", 10_000)  # settled already: nothing happens
    assert limiter.admit("a", "r3", limits, 300) is None


def test_usage_beyond_the_reservation_leaves_a_debt(clock: Clock) -> None:
    limiter, limits = RateLimiter(clock=clock), RateLimits(tokens_per_minute=1000)
    assert limiter.admit("a", "r1", limits, 0) is None
    limiter.settle("r1", 3000)  # -2000
    denial = limiter.admit("a", "r2", limits, 0)
    assert denial is not None and denial.retry_after_s == pytest.approx(120.06, abs=0.01)
    clock.now += 121
    assert limiter.admit("a", "r2", limits, 0) is None


def test_release_gives_the_reservation_back(clock: Clock) -> None:
    limiter, limits = RateLimiter(clock=clock), RateLimits(tokens_per_minute=1000)
    assert limiter.admit("a", "r1", limits, 1000) is None
    assert limiter.admit("a", "r2", limits, 1) is not None
    limiter.release("r1")
    assert limiter.admit("a", "r2", limits, 1000) is None


def test_a_request_larger_than_a_full_bucket_is_never_admitted(clock: Clock) -> None:
    limiter = RateLimiter(clock=clock)
    denial = limiter.admit("a", "r", RateLimits(tokens_per_minute=1000), 1001)
    assert denial is not None and denial.retry_after_s is None and "1001" in denial.reason


def test_a_denied_request_is_charged_nothing(clock: Clock) -> None:
    limiter = RateLimiter(clock=clock)
    limits = RateLimits(requests_per_minute=10, tokens_per_minute=1000)
    assert limiter.admit("a", "r1", limits, 900) is None
    assert admitted(limiter, 50, limits, reserve=900) == 0  # each is over the token budget
    assert admitted(limiter, 50, limits, reserve=100) == 1  # so the request budget was left intact: 9 left
    assert admitted(limiter, 50, limits, reserve=0) == 0  # the token bucket is empty now


def test_unsettled_reservations_expire_charged(clock: Clock) -> None:
    limiter, limits = RateLimiter(clock=clock, reservation_ttl_s=60), RateLimits(tokens_per_minute=1000)
    assert limiter.admit("a", "r1", limits, 1000) is None
    clock.now += 30
    assert limiter.admit("a", "r2", limits, 500) is None  # refilled 500, now 0
    clock.now += 31  # refilled ~517; r1 expired, so settling it refunds nothing (it would refund 1000)
    limiter.settle("r1", 0)
    assert limiter.admit("a", "r3", limits, 500) is None and limiter.admit("a", "r4", limits, 100) is not None


def test_a_changed_limit_takes_effect(clock: Clock) -> None:
    limiter = RateLimiter(clock=clock)
    assert admitted(limiter, 5, RateLimits(requests_per_minute=100)) == 5
    assert admitted(limiter, 100, RateLimits(requests_per_minute=10)) == 10  # clamped to the new capacity


def test_concurrent_admissions_never_exceed_the_budget(clock: Clock) -> None:
    limiter, limits = RateLimiter(clock=clock), RateLimits(requests_per_minute=250, tokens_per_minute=10**6)
    results: list[bool] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        mine = [limiter.admit("a", f"{k}-{i}", limits, 10) is None for i in range(100)]
        for i in range(0, 100, 2):
            limiter.settle(f"{k}-{i}", 5)
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 250
