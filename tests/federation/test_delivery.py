"""Tests for fedpetition.federation.delivery (the persistent outbound delivery queue).

Policy and loop run against MemoryDeliveryStore with a fake clock, a seeded RNG and a
scripted ``post``; one test POSTs to a real aiohttp server on 127.0.0.1 through the
real Fetcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from fedpetition.core.errors import LocalProtocolError
from fedpetition.federation.delivery import (
    DUE_BATCH,
    Deliverer,
    Delivery,
    MemoryDeliveryStore,
    PeerState,
    RetryPolicy,
    is_permanent_failure,
)
from fedpetition.federation.fetch import Fetcher, FetchError, ForbiddenAddressError

T0 = 1_700_000_000
A = "a.example"
B = "b.example"
URL_A = "https://a.example/inbox"
URL_B = "https://b.example/inbox"
BODY = b'{"id":"https://here.example/activities/1","type":"Create"}'
DAY = 86400


class Clock:
    """A fake clock: POSIX seconds that move only when the test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


Outcome = Exception | None


class ScriptedPost:
    """Records each POST; raises the scripted outcomes for a URL in turn, then succeeds."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.script: dict[str, list[Outcome]] = {}
        self.always: dict[str, Exception] = {}

    def then(self, url: str, *outcomes: Outcome) -> None:
        self.script.setdefault(url, []).extend(outcomes)

    def fail_always(self, url: str, exc: Exception) -> None:
        self.always[url] = exc

    def urls(self) -> list[str]:
        return [url for url, _ in self.calls]

    async def __call__(self, url: str, body: bytes) -> None:
        self.calls.append((url, body))
        queued = self.script.get(url)
        if queued:
            outcome = queued.pop(0)
            if outcome is not None:
                raise outcome
            return
        if url in self.always:
            raise self.always[url]


def http(status: int, retry_after: int | None = None, host: str = A) -> FetchError:
    return FetchError(
        host, f"answered HTTP {status}", remote_status=status, retry_after=retry_after
    )


def network(host: str = A) -> FetchError:
    return FetchError(host, "connection failed (ClientConnectorError)")


class Harness:
    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        batch_size: int = DUE_BATCH,
        poll_seconds: float = 5.0,
    ) -> None:
        self.store = MemoryDeliveryStore()
        self.post = ScriptedPost()
        self.clock = Clock()
        self.deliverer = Deliverer(
            self.store,
            self.post,
            clock=self.clock,
            rng=random.Random(0),
            policy=policy or RetryPolicy(),
            batch_size=batch_size,
            poll_seconds=poll_seconds,
        )

    def row(self, delivery_id: int) -> Delivery:
        return self.store.deliveries[delivery_id]

    async def peer(self, name: str) -> PeerState:
        return await self.store.peer_state(name)

    async def open_circuit(self, peer: str = A, url: str = URL_A) -> list[int]:
        """Five deliveries to ``peer`` failing in one pass: its circuit opens now."""
        self.post.fail_always(url, network(peer))
        ids = [await self.deliverer.enqueue(peer, url, BODY) for _ in range(5)]
        assert await self.deliverer.deliver_due() == 5
        state = await self.peer(peer)
        assert state == PeerState(peer, 5, int(self.clock.now), int(self.clock.now) + 60, 60)
        return ids


def jitter(ceiling: int, rng: random.Random) -> int:
    """Equal jitter as specified, computed independently of RetryPolicy."""
    return ceiling - rng.randint(0, ceiling // 2)


# ------------------------------------------------------------------ policy


def test_delay_equal_jitter_and_cap() -> None:
    policy = RetryPolicy()
    rng, ref = random.Random(0), random.Random(0)
    for attempts in range(20):
        ceiling = min(30 * 2**attempts, 6 * 3600)
        got = policy.delay(attempts, rng)
        assert got == jitter(ceiling, ref)
        assert (ceiling + 1) // 2 <= got <= ceiling
    assert policy.delay(10_000, rng) <= 6 * 3600  # no overflow, still capped


def test_retry_after_bounds() -> None:
    policy = RetryPolicy()
    rng = random.Random(0)
    assert policy.retry_delay(0, 120, rng) == 120
    assert policy.retry_delay(9, 5000, rng) == 5000
    assert policy.retry_delay(0, 10 * DAY, rng) == DAY
    assert policy.retry_delay(0, 0, rng) == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_seconds": 0},
        {"base_seconds": 100, "max_delay_seconds": 50},
        {"breaker_failures": 0},
        {"probe_min_seconds": 100, "probe_max_seconds": 50},
        {"max_retry_after": 0},
        {"give_up_after_seconds": 0},
    ],
)
def test_policy_refuses_nonsense(kwargs: dict[str, int]) -> None:
    with pytest.raises(LocalProtocolError):
        RetryPolicy(**kwargs)


@pytest.mark.parametrize(
    ("exc", "permanent"),
    [
        (http(400), True),
        (http(401), True),
        (http(403), True),
        (http(404), True),
        (http(410), True),
        (http(422), True),
        (http(408), False),
        (http(425), False),
        (http(429), False),
        (http(500), False),
        (http(502), False),
        (http(503, retry_after=5), False),
        (http(304), False),
        (network(), False),
        (FetchError(A, "timed out", status=504), False),
        (ForbiddenAddressError(A, "private address not allowed"), True),
        (RuntimeError("boom"), False),
    ],
)
def test_is_permanent_failure(exc: Exception, permanent: bool) -> None:
    assert is_permanent_failure(exc) is permanent


# ---------------------------------------------------------------- outcomes


async def test_success_deletes() -> None:
    h = Harness()
    delivery_id = await h.deliverer.enqueue(A, URL_A, BODY)
    assert delivery_id == 1
    assert await h.store.pending_deliveries() == 1
    assert await h.deliverer.deliver_due() == 1
    assert h.post.calls == [(URL_A, BODY)]
    assert await h.store.pending_deliveries() == 0
    assert h.store.dropped == []
    assert await h.deliverer.deliver_due() == 0


async def test_404_drops_without_counting_against_peer() -> None:
    h = Harness()
    await h.store.set_peer_state(PeerState(A, failures=3))
    h.post.then(URL_A, http(404))
    delivery_id = await h.deliverer.enqueue(A, URL_A, BODY)
    assert await h.deliverer.deliver_due() == 1
    assert await h.store.pending_deliveries() == 0
    assert h.store.dropped == [(delivery_id, "a.example: answered HTTP 404")]
    # The peer answered: its run of consecutive failures is over.
    assert await h.peer(A) == PeerState(A)


async def test_forbidden_address_drops_and_leaves_peer_alone() -> None:
    h = Harness()
    await h.store.set_peer_state(PeerState(A, failures=3))
    h.post.then(URL_A, ForbiddenAddressError(A, "resolves to 10.0.0.1, a private address"))
    delivery_id = await h.deliverer.enqueue(A, URL_A, BODY)
    assert await h.deliverer.deliver_due() == 1
    assert await h.store.pending_deliveries() == 0
    assert [d for d, _ in h.store.dropped] == [delivery_id]
    assert await h.peer(A) == PeerState(A, failures=3)


async def test_500_backoff_grows_exponentially_to_the_cap() -> None:
    h = Harness(RetryPolicy(breaker_failures=1000))
    h.post.fail_always(URL_A, http(500))
    delivery_id = await h.deliverer.enqueue(A, URL_A, BODY)
    ref = random.Random(0)
    ceilings = [30, 60, 120, 240, 480, 960, 1920, 3840, 7680, 15360, 21600, 21600, 21600]
    for attempt, ceiling in enumerate(ceilings, start=1):
        assert await h.deliverer.deliver_due() == 1
        row = h.row(delivery_id)
        assert row.attempts == attempt
        delay = row.next_at - int(h.clock.now)
        assert delay == jitter(ceiling, ref)
        assert (ceiling + 1) // 2 <= delay <= ceiling
        assert h.store.errors[delivery_id] == "a.example: answered HTTP 500"
        # Not due a second before its time.
        h.clock.advance(delay - 1)
        assert await h.deliverer.deliver_due() == 0
        h.clock.advance(1)
    assert len(h.post.calls) == len(ceilings)
    assert (await h.peer(A)).failures == len(ceilings)


async def test_first_500_delay_within_base() -> None:
    h = Harness()
    h.post.then(URL_A, http(500))
    delivery_id = await h.deliverer.enqueue(A, URL_A, BODY)
    await h.deliverer.deliver_due()
    delay = h.row(delivery_id).next_at - T0
    assert delay == 30 - random.Random(0).randint(0, 15)
    assert 15 <= delay <= 30
    assert (await h.peer(A)).failures == 1


async def test_429_retry_after_sets_next_at() -> None:
    h = Harness()
    h.post.then(URL_A, http(429, retry_after=120))
    delivery_id = await h.deliverer.enqueue(A, URL_A, BODY)
    await h.deliverer.deliver_due()
    assert h.row(delivery_id).next_at == T0 + 120
    assert h.row(delivery_id).attempts == 1
    assert (await h.peer(A)).failures == 1


async def test_503_retry_after_longer_than_backoff_is_honoured_and_capped() -> None:
    h = Harness()
    h.post.then(URL_A, http(503, retry_after=5000), http(503, retry_after=30 * DAY))
    delivery_id = await h.deliverer.enqueue(A, URL_A, BODY)
    await h.deliverer.deliver_due()
    assert h.row(delivery_id).next_at == T0 + 5000
    h.clock.advance(5000)
    await h.deliverer.deliver_due()
    assert h.row(delivery_id).next_at == T0 + 5000 + DAY  # max_retry_after
    assert h.row(delivery_id).attempts == 2


async def test_gives_up_after_seven_days() -> None:
    h = Harness(RetryPolicy(breaker_failures=1000))
    h.post.fail_always(URL_A, http(502))
    delivery_id = await h.deliverer.enqueue(A, URL_A, BODY)
    # As if it had been retried all week: due again one second before the week is over.
    h.clock.now = T0 + 7 * DAY - 1
    await h.store.wake_peer(A, int(h.clock.now))
    assert await h.deliverer.deliver_due() == 1
    assert h.row(delivery_id).attempts == 1
    assert h.store.dropped == []
    # Failing when exactly a week old: dropped, not rescheduled.
    h.clock.now = T0 + 7 * DAY
    await h.store.wake_peer(A, int(h.clock.now))
    assert await h.deliverer.deliver_due() == 1
    assert h.store.dropped == [(delivery_id, "gave up: a.example: answered HTTP 502")]
    assert await h.store.pending_deliveries() == 0


async def test_unexpected_exception_is_a_transient_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness()
    h.post.then(URL_A, RuntimeError("bug in post"))
    delivery_id = await h.deliverer.enqueue(A, URL_A, BODY)
    with caplog.at_level(logging.WARNING, logger="fedpetition.delivery"):
        assert await h.deliverer.deliver_due() == 1
    assert h.row(delivery_id).attempts == 1
    assert h.store.errors[delivery_id] == "RuntimeError: bug in post"
    assert "delivery 1 to https://a.example/inbox failed unexpectedly" in caplog.text
    assert BODY.decode() not in caplog.text


# ----------------------------------------------------------------- breaker


async def test_breaker_opens_after_five_consecutive_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness()
    h.post.fail_always(URL_A, network())
    ids = [await h.deliverer.enqueue(A, URL_A, BODY) for _ in range(4)]
    assert await h.deliverer.deliver_due() == 4
    assert await h.peer(A) == PeerState(A, failures=4)
    h.clock.advance(100)  # every backoff (at most 30 s) has passed
    with caplog.at_level(logging.WARNING, logger="fedpetition.delivery"):
        # The first failure of this pass is the fifth: the others were in flight.
        assert await h.deliverer.deliver_due() == 4
    now = T0 + 100
    # Eight failures, but only the fifth opened the circuit; in-flight failures
    # after it do not move the probe schedule.
    assert await h.peer(A) == PeerState(A, 8, now, now + 60, 60)
    assert "peer a.example marked unavailable" in caplog.text
    assert [h.row(i).attempts for i in ids] == [2, 2, 2, 2]


async def test_open_circuit_skips_until_probe_then_one_probe_backing_off() -> None:
    h = Harness()
    opened = await h.open_circuit()
    opened_at = T0
    new = [await h.deliverer.enqueue(A, URL_A, BODY) for _ in range(3)]
    calls = len(h.post.calls)

    # Before next_probe: nothing goes, nothing is counted; waiting ones are parked.
    for _ in range(59):
        h.clock.advance(1)
        assert await h.deliverer.deliver_due() == 0
    assert len(h.post.calls) == calls
    assert [h.row(i).attempts for i in new] == [0, 0, 0]
    assert [h.row(i).next_at for i in new] == [opened_at + 60] * 3

    # Probes: one per pass, the interval doubling up to the cap.
    intervals = [120, 240, 480, 960, 1920, 3600, 3600]
    probe_at = opened_at + 60
    for interval in intervals:
        h.clock.now = probe_at
        assert await h.deliverer.deliver_due() == 1
        assert len(h.post.calls) == calls + 1
        calls += 1
        assert await h.deliverer.deliver_due() == 0  # same instant: no second probe
        state = await h.peer(A)
        assert state.probe_interval == interval
        assert state.next_probe == probe_at + interval
        assert state.unavailable_since == opened_at
        h.clock.now = probe_at + interval - 1
        assert await h.deliverer.deliver_due() == 0
        probe_at += interval
    # The three new deliveries never spent an attempt; the probes were taken oldest first.
    assert [h.row(i).attempts for i in new] == [0, 0, 0]
    assert sum(h.row(i).attempts for i in opened) == 5 + len(intervals)
    assert await h.store.pending_deliveries() == 8


async def test_successful_probe_revives_and_wakes_every_delivery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness()
    await h.open_circuit()
    for _ in range(3):
        await h.deliverer.enqueue(A, URL_A, BODY)
    h.clock.advance(60)
    del h.post.always[URL_A]
    with caplog.at_level(logging.INFO, logger="fedpetition.delivery"):
        assert await h.deliverer.deliver_due() == 1  # the probe, accepted
    assert "peer a.example available again" in caplog.text
    assert await h.peer(A) == PeerState(A)
    assert await h.store.pending_deliveries() == 7
    # All seven go in the very next pass, without the clock moving.
    assert await h.deliverer.deliver_due() == 7
    assert await h.store.pending_deliveries() == 0


async def test_probe_answered_with_4xx_revives_too() -> None:
    h = Harness()
    await h.open_circuit()
    h.clock.advance(60)
    h.post.then(URL_A, http(410))
    assert await h.deliverer.deliver_due() == 1
    assert len(h.store.dropped) == 1
    assert await h.peer(A) == PeerState(A)


async def test_peer_spoke_revives_and_wakes() -> None:
    h = Harness()
    ids = await h.open_circuit()
    # Backoffs (15..30 s) and the probe (60 s) are still ahead.
    assert await h.deliverer.deliver_due() == 0
    await h.deliverer.peer_spoke(A)
    assert await h.peer(A) == PeerState(A)
    assert all(h.row(i).next_at == T0 for i in ids)
    assert h.deliverer._wake.is_set()
    del h.post.always[URL_A]
    assert await h.deliverer.deliver_due() == 5
    assert await h.store.pending_deliveries() == 0


async def test_peer_spoke_on_a_healthy_peer_changes_nothing() -> None:
    h = Harness()
    delivery_id = await h.deliverer.enqueue(A, URL_A, BODY)  # unscripted: it succeeds
    await h.deliverer.deliver_due()
    assert delivery_id not in h.store.deliveries
    await h.deliverer.peer_spoke(A)
    assert await h.peer(A) == PeerState(A)


async def test_peer_spoke_after_failures_retries_its_deliveries_now() -> None:
    """A node back from an outage (circuit still closed) gets what it missed at once."""
    h = Harness()
    await h.store.set_peer_state(PeerState(A, failures=2))
    h.post.then(URL_A, http(500))
    delivery_id = await h.deliverer.enqueue(A, URL_A, BODY)
    await h.deliverer.deliver_due()
    assert h.row(delivery_id).next_at > h.clock.now
    await h.deliverer.peer_spoke(A)
    assert await h.peer(A) == PeerState(A)
    assert h.row(delivery_id).next_at == int(h.clock.now)


async def test_failures_of_one_peer_do_not_touch_another() -> None:
    h = Harness()
    await h.open_circuit(A, URL_A)
    b = await h.deliverer.enqueue(B, URL_B, BODY)
    a = await h.deliverer.enqueue(A, URL_A, BODY)
    assert await h.deliverer.deliver_due() == 1
    assert h.post.calls[-1] == (URL_B, BODY)
    assert b not in h.store.deliveries
    assert h.row(a).attempts == 0
    assert await h.peer(B) == PeerState(B)


async def test_dead_peer_backlog_does_not_starve_others() -> None:
    h = Harness(batch_size=5)
    await h.open_circuit(A, URL_A)
    backlog = [await h.deliverer.enqueue(A, URL_A, BODY) for _ in range(12)]
    h.clock.advance(1)
    b = await h.deliverer.enqueue(B, URL_B, BODY)
    passes = 0
    while b in h.store.deliveries:
        passes += 1
        assert passes <= 4
        await h.deliverer.deliver_due()
    assert passes == 3  # 5 + 5 parked, then the last 2 and B's
    assert all(h.row(i).next_at == T0 + 60 and h.row(i).attempts == 0 for i in backlog)


async def test_parked_deliveries_still_give_up() -> None:
    h = Harness()
    await h.store.set_peer_state(PeerState(A, 5, T0, T0 + 30 * DAY, 3600))
    old = await h.deliverer.enqueue(A, URL_A, BODY)
    h.clock.advance(1)
    young = await h.deliverer.enqueue(A, URL_A, BODY)
    h.clock.now = T0 + 7 * DAY
    await h.store.wake_peer(A, int(h.clock.now))
    assert await h.deliverer.deliver_due() == 0
    assert h.post.calls == []
    assert h.store.dropped == [(old, "peer a.example unavailable")]
    assert h.row(young).next_at == T0 + 30 * DAY


# ------------------------------------------------------------- concurrency


async def test_concurrency_bound() -> None:
    store = MemoryDeliveryStore()
    release = asyncio.Event()
    in_flight = 0
    peak = 0

    async def post(url: str, body: bytes) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await release.wait()
        finally:
            in_flight -= 1

    deliverer = Deliverer(store, post, clock=Clock(), rng=random.Random(0), concurrency=3)
    for n in range(10):
        await deliverer.enqueue(f"p{n % 2}.example", f"https://p{n % 2}.example/inbox", BODY)
    task = asyncio.create_task(deliverer.deliver_due())
    for _ in range(50):
        await asyncio.sleep(0)
    assert in_flight == 3
    release.set()
    assert await asyncio.wait_for(task, 5) == 10
    assert peak == 3
    assert await store.pending_deliveries() == 0


# --------------------------------------------------------------------- run


@contextlib.asynccontextmanager
async def running(deliverer: Deliverer) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(deliverer.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(predicate: Callable[[], bool], timeout: float = 1.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.001)

    await asyncio.wait_for(poll(), timeout)


async def test_run_delivers_on_notify_and_survives_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness(poll_seconds=3600)
    h.post.then(URL_A, RuntimeError("bug in post"))
    async with running(h.deliverer) as task:
        first = await h.deliverer.enqueue(A, URL_A, BODY)
        await until(lambda: len(h.post.calls) == 1)
        await until(lambda: h.row(first).attempts == 1)
        second = await h.deliverer.enqueue(B, URL_B, BODY)
        await until(lambda: second not in h.store.deliveries)
        assert not task.done()
    assert h.post.urls() == [URL_A, URL_B]
    assert "failed unexpectedly" in caplog.text


async def test_run_survives_a_failing_store(caplog: pytest.LogCaptureFixture) -> None:
    class FlakyStore(MemoryDeliveryStore):
        failures = 1

        async def due_deliveries(self, now: int, limit: int) -> list[Delivery]:
            if self.failures:
                self.failures -= 1
                raise OSError("database is locked")
            return await super().due_deliveries(now, limit)

    store = FlakyStore()
    post = ScriptedPost()
    deliverer = Deliverer(store, post, clock=Clock(), rng=random.Random(0), poll_seconds=3600)
    async with running(deliverer) as task:
        await until(lambda: store.failures == 0)
        await deliverer.enqueue(A, URL_A, BODY)
        await until(lambda: len(post.calls) == 1)
        assert not task.done()
    assert "delivery pass failed" in caplog.text
    assert await store.pending_deliveries() == 0


async def test_run_drains_a_backlog_larger_than_a_batch() -> None:
    h = Harness(poll_seconds=3600, batch_size=4)
    for _ in range(10):
        (await h.store.enqueue_deliveries([(A, URL_A, BODY)], T0))[0]
    async with running(h.deliverer):
        await until(lambda: not h.store.deliveries)
    assert len(h.post.calls) == 10


# ------------------------------------------------------------------- store


async def test_memory_store_semantics() -> None:
    store = MemoryDeliveryStore()
    first, second = await store.enqueue_deliveries([(A, URL_A, b"1"), (B, URL_B, b"2")], 100)
    (third,) = await store.enqueue_deliveries([(A, URL_A, b"3")], 50)
    assert await store.due_deliveries(49, 10) == []
    assert [d.id for d in await store.due_deliveries(100, 10)] == [third, first, second]
    assert [d.id for d in await store.due_deliveries(100, 2)] == [third, first]
    await store.reschedule_delivery(first, 1, 500, "x")
    assert store.deliveries[first] == Delivery(first, A, URL_A, b"1", 1, 500, 100)
    await store.wake_peer(A, 200)  # first: 500 -> 200; third (50) is due already
    assert [(d.id, d.next_at) for d in await store.due_deliveries(200, 10)] == [
        (third, 50),
        (second, 100),
        (first, 200),
    ]
    await store.delivered(first)
    await store.drop_delivery(second, "gone")
    await store.delivered(first)  # no longer stored: nothing happens
    await store.reschedule_delivery(second, 3, 3, "late")
    assert await store.pending_deliveries() == 1
    assert store.dropped == [(second, "gone")]
    assert await store.peer_state("c.example") == PeerState("c.example")


def test_deliverer_refuses_nonsense() -> None:
    async def post(url: str, body: bytes) -> None:
        return None

    with pytest.raises(LocalProtocolError):
        Deliverer(MemoryDeliveryStore(), post, concurrency=0)
    with pytest.raises(LocalProtocolError):
        Deliverer(MemoryDeliveryStore(), post, poll_seconds=0)


# ------------------------------------------------------------ real HTTP


async def test_real_server_503_retry_after_then_202() -> None:
    received: list[tuple[bytes, str]] = []

    async def inbox(request: web.Request) -> web.Response:
        received.append((await request.read(), request.headers.get("Content-Type", "")))
        if len(received) == 1:
            return web.Response(status=503, headers={"Retry-After": "2"})
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/inbox", inbox)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        url = f"http://127.0.0.1:{port}/inbox"
        async with Fetcher(allow_loopback=True, user_agent="test") as fetcher:

            def post(url: str, body: bytes) -> Awaitable[None]:
                async def send() -> None:
                    await fetcher.post(url, body, {"Content-Type": "application/activity+json"})

                return send()

            store = MemoryDeliveryStore()
            clock = Clock()
            deliverer = Deliverer(store, post, clock=clock, rng=random.Random(0))
            delivery_id = await deliverer.enqueue(f"127.0.0.1:{port}", url, BODY)

            assert await deliverer.deliver_due() == 1
            row = store.deliveries[delivery_id]
            assert (row.attempts, row.next_at) == (1, T0 + 2)
            assert store.errors[delivery_id] == "127.0.0.1: answered HTTP 503"

            clock.advance(1)
            assert await deliverer.deliver_due() == 0
            clock.advance(1)
            assert await deliverer.deliver_due() == 1
            assert await store.pending_deliveries() == 0
    finally:
        await runner.cleanup()
    assert received == [(BODY, "application/activity+json")] * 2


async def test_a_success_after_failures_wakes_the_peers_backed_off_deliveries() -> None:
    """A node that restarted finds its peer up: what waited out a backoff goes now."""
    h = Harness()
    h.post.then(URL_A, http(500))
    waiting = await h.deliverer.enqueue(A, URL_A, BODY)
    await h.deliverer.deliver_due()
    assert h.row(waiting).next_at > h.clock.now
    fresh = await h.deliverer.enqueue(A, URL_A, BODY)  # unscripted: it succeeds
    await h.deliverer.deliver_due()
    assert fresh not in h.store.deliveries
    assert h.row(waiting).next_at == int(h.clock.now)
    await h.deliverer.deliver_due()
    assert waiting not in h.store.deliveries
    assert await h.peer(A) == PeerState(A)
