"""The outbound delivery queue: activities POSTed to peers' inboxes, retried over days.

A node federates by POSTing ActivityPub-style activities (JSON bytes) to the inboxes
of its peers. Peers go down, restart, rate-limit and move, so a POST is never fire
and forget: :meth:`Deliverer.enqueue` writes the delivery to a :class:`DeliveryStore`
(a database table in a real node) and the :class:`Deliverer` loop attempts it until
the peer accepts it or the :class:`RetryPolicy` gives up. This module holds only the
policy and the loop; storage is behind the :class:`DeliveryStore` protocol and the
HTTP client behind a ``post(url, body)`` callable, so both can be faked in tests.
:class:`MemoryDeliveryStore` is the reference for the store's semantics.

Guarantees and non-guarantees:

* **Nothing is lost.** A delivery leaves the store only through
  :meth:`~DeliveryStore.delivered` (the peer answered 2xx) or
  :meth:`~DeliveryStore.drop_delivery` (the peer refused it for good, its address is
  forbidden, or the give-up age passed). A restart resumes from the store.
* **At least once, not exactly once.** A crash between a successful POST and
  ``delivered`` delivers the activity again after the restart. Receivers deduplicate
  by the activity's ``id``, as ActivityPub receivers must anyway.
* **No order.** Deliveries to one peer may be attempted concurrently, and a retried
  delivery arrives after newer ones. That is acceptable because activities are
  idempotent by ``id`` at the receiver and each carries what it needs; keeping a
  per-peer order would let one stuck activity hold back all the others.

Outcome of one attempt (``post`` returns on any 2xx and raises
:class:`~fedpetition.federation.fetch.FetchError` otherwise)::

    2xx                                  delivered; the peer is alive (see below)
    4xx but 408, 425, 429                dropped: the peer refused this activity for
                                         good; it answered, so it is alive
    ForbiddenAddressError                dropped: our SSRF policy will not allow that
                                         address later either; says nothing on the peer
    5xx, 408, 425, 429, network error,   retried at now + backoff, or at now +
    timeout, any other exception         Retry-After when the peer sent one; dropped
                                         once the delivery is give_up_after old;
                                         counts as a failure of the peer

Per peer, a circuit breaker (:class:`PeerState`): after ``breaker_failures``
consecutive failures the peer is *unavailable*. Its deliveries then wait without
spending attempts, and one delivery per ``probe_interval`` is tried as a probe; each
failed probe doubles the interval (up to ``probe_max_seconds``). The circuit closes
when a probe, or any delivery, is answered (2xx or a permanent 4xx), or when the
peer talks to us (:meth:`Deliverer.peer_spoke`); all its queued deliveries are then
made due at once. This keeps a dead peer from taking the delivery slots and log
lines of the live ones, and brings it back quickly once it is up.

Logs name deliveries by id, peers by name and inboxes by URL; bodies (which may
quote petition content) are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from fedpetition.core.errors import LocalProtocolError
from fedpetition.federation.fetch import FetchError, ForbiddenAddressError

__all__ = [
    "DUE_BATCH",
    "Deliverer",
    "Delivery",
    "DeliveryStore",
    "MemoryDeliveryStore",
    "PeerState",
    "RetryPolicy",
    "is_permanent_failure",
]

log = logging.getLogger("fedpetition.delivery")

DUE_BATCH = 500  # deliveries fetched per pass; run() loops at once while passes are full
_TRANSIENT_4XX = frozenset({408, 425, 429})  # timeout, too early, too many requests
_ERROR_CHARS = 200  # of an unexpected exception's message kept in the store


# ---------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Delivery:
    """One queued POST of an activity to a peer's inbox, as the store holds it."""

    id: int
    peer: str  # the peer's node name (host[:port])
    url: str  # the inbox URL
    body: bytes  # the activity JSON
    attempts: int  # failed attempts so far
    next_at: int  # POSIX seconds: not before
    created: int  # POSIX seconds: when queued


@dataclass(frozen=True, slots=True)
class PeerState:
    """A peer's circuit breaker. Closed (the default) while ``unavailable_since`` is None."""

    name: str
    failures: int = 0  # consecutive failed deliveries
    unavailable_since: int | None = None  # set when the circuit opens
    next_probe: int | None = None  # while unavailable: when one delivery may be tried
    probe_interval: int = 0  # current probe interval (doubles while it keeps failing)

    @property
    def unavailable(self) -> bool:
        """Whether the circuit is open."""
        return self.unavailable_since is not None


async def wait_event(event: asyncio.Event, timeout: float) -> None:
    """Wait until ``event`` is set or ``timeout`` seconds pass, whichever comes first.

    Not ``wait_for`` with its TimeoutError suppressed: on Python 3.11, a task cancelled
    just as ``wait_for`` times out can see the cancellation turned into the timeout, and
    a loop that suppresses timeouts then never stops. ``asyncio.wait`` never swallows
    the caller's cancellation.
    """
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to retry, when to give up, and when a peer counts as unavailable.

    The defaults retry over a week: a peer down for a weekend, or moved to a new
    server over a few days, still gets everything it missed.
    """

    base_seconds: int = 30
    max_delay_seconds: int = 6 * 3600
    give_up_after_seconds: int = 7 * 86400
    breaker_failures: int = 5  # consecutive failures that open a peer's circuit
    probe_min_seconds: int = 60
    probe_max_seconds: int = 3600
    max_retry_after: int = 86400  # a peer's Retry-After is honoured up to this

    def __post_init__(self) -> None:
        if self.base_seconds < 1 or self.max_delay_seconds < self.base_seconds:
            raise LocalProtocolError("retry policy: need 1 <= base_seconds <= max_delay_seconds")
        if self.give_up_after_seconds < 1 or self.breaker_failures < 1:
            raise LocalProtocolError("retry policy: give-up age and breaker count must be >= 1")
        if not 1 <= self.probe_min_seconds <= self.probe_max_seconds:
            raise LocalProtocolError("retry policy: need 1 <= probe_min <= probe_max")
        if self.max_retry_after < 1:
            raise LocalProtocolError("retry policy: max_retry_after must be >= 1")

    def delay(self, attempts: int, rng: random.Random) -> int:
        """Seconds to wait after a failure, ``attempts`` being the failures before it.

        Exponential: ``base * 2**attempts`` capped at ``max_delay_seconds``, then
        "equal jitter", uniform in ``[delay/2, delay]``. Without jitter, every
        delivery queued while a peer was down (or every node of a federation that
        lost the same peer) would retry in lockstep and hit it in one burst the
        moment it comes back; the lower half keeps the backoff itself meaningful.
        """
        exponent = min(max(attempts, 0), 62)  # base << 62 is past any sane cap
        ceiling = min(self.base_seconds << exponent, self.max_delay_seconds)
        return ceiling - rng.randint(0, ceiling // 2)

    def retry_delay(self, attempts: int, retry_after: int | None, rng: random.Random) -> int:
        """:meth:`delay`, or the peer's ``Retry-After`` when it sent one.

        Retry-After wins even when longer than the backoff: the peer said when it can
        take more, and retrying earlier only gets another 429/503. It is capped at
        ``max_retry_after`` so a bogus value cannot park a delivery until it expires,
        and is at least one second so ``Retry-After: 0`` does not spin.
        """
        if retry_after is not None:
            return max(min(retry_after, self.max_retry_after), 1)
        return self.delay(attempts, rng)


def is_permanent_failure(exc: BaseException) -> bool:
    """Whether a failed ``post`` will fail the same way if retried, so the delivery is dropped.

    A 4xx means the peer looked at this request and refused it (bad signature, unknown
    inbox, gone); resending the same bytes cannot change that. 408, 425 and 429 are the
    4xx codes that mean "not now". A :class:`ForbiddenAddressError` is our own SSRF
    policy, which will refuse the address tomorrow too. Everything else (5xx, network
    errors, timeouts, and exceptions we did not foresee) is worth retrying.
    """
    if isinstance(exc, ForbiddenAddressError):
        return True
    if isinstance(exc, FetchError) and exc.remote_status is not None:
        status = exc.remote_status
        return 400 <= status < 500 and status not in _TRANSIENT_4XX
    return False


# ----------------------------------------------------------------------- store


class DeliveryStore(Protocol):
    """Durable storage of the queue and of the peers' circuit states.

    Every method is one atomic change. :class:`MemoryDeliveryStore` is the reference
    for their semantics; a database implementation must behave the same. Methods
    given an id that is no longer stored do nothing.
    """

    async def enqueue_deliveries(
        self, items: Sequence[tuple[str, str, bytes]], now: int
    ) -> list[int]:
        """Store new deliveries ``(peer, url, body)`` (attempts 0, ``next_at = created =
        now``) in one transaction; return their ids in order."""
        ...

    async def due_deliveries(self, now: int, limit: int) -> list[Delivery]:
        """At most ``limit`` deliveries with ``next_at <= now``, ordered by ``next_at, id``."""
        ...

    async def delivered(self, delivery_id: int) -> None:
        """The peer accepted the delivery: delete it."""
        ...

    async def reschedule_delivery(
        self, delivery_id: int, attempts: int, next_at: int, error: str
    ) -> None:
        """Set attempts and next_at; ``error`` is the last failure, for operators."""
        ...

    async def drop_delivery(self, delivery_id: int, error: str) -> None:
        """Give up on the delivery: delete it (``error`` says why, for operators)."""
        ...

    async def peer_state(self, peer: str) -> PeerState:
        """The peer's circuit state; ``PeerState(peer)`` if none is stored."""
        ...

    async def set_peer_state(self, state: PeerState) -> None:
        """Store ``state`` as the circuit state of ``state.name``."""
        ...

    async def wake_peer(self, peer: str, now: int) -> None:
        """Make all of the peer's deliveries due: ``next_at = min(next_at, now)`` for each.

        Deliveries already due keep their place in the ``next_at, id`` order.
        """
        ...

    async def pending_deliveries(self) -> int:
        """How many deliveries are queued, due or not (for status pages and metrics)."""
        ...


class MemoryDeliveryStore:
    """A :class:`DeliveryStore` in dicts: the reference semantics, and the unit tests' store.

    Nothing survives the process, so a node never uses it. ``errors`` keeps the last
    error of each delivery, and ``dropped`` the ``(id, error)`` of each dropped one,
    for tests to inspect.
    """

    def __init__(self) -> None:
        self.deliveries: dict[int, Delivery] = {}
        self.peers: dict[str, PeerState] = {}
        self.errors: dict[int, str] = {}
        self.dropped: list[tuple[int, str]] = []
        self._next_id = 1

    async def enqueue_deliveries(
        self, items: Sequence[tuple[str, str, bytes]], now: int
    ) -> list[int]:
        ids = []
        for peer, url, body in items:
            delivery_id = self._next_id
            self._next_id += 1
            self.deliveries[delivery_id] = Delivery(delivery_id, peer, url, body, 0, now, now)
            ids.append(delivery_id)
        return ids

    async def due_deliveries(self, now: int, limit: int) -> list[Delivery]:
        due = sorted(
            (d for d in self.deliveries.values() if d.next_at <= now),
            key=lambda d: (d.next_at, d.id),
        )
        return due[:limit]

    async def delivered(self, delivery_id: int) -> None:
        self.deliveries.pop(delivery_id, None)

    async def reschedule_delivery(
        self, delivery_id: int, attempts: int, next_at: int, error: str
    ) -> None:
        current = self.deliveries.get(delivery_id)
        if current is not None:
            self.deliveries[delivery_id] = replace(current, attempts=attempts, next_at=next_at)
            self.errors[delivery_id] = error

    async def drop_delivery(self, delivery_id: int, error: str) -> None:
        if self.deliveries.pop(delivery_id, None) is not None:
            self.errors[delivery_id] = error
            self.dropped.append((delivery_id, error))

    async def peer_state(self, peer: str) -> PeerState:
        return self.peers.get(peer, PeerState(peer))

    async def set_peer_state(self, state: PeerState) -> None:
        self.peers[state.name] = state

    async def wake_peer(self, peer: str, now: int) -> None:
        for delivery_id, delivery in list(self.deliveries.items()):
            if delivery.peer == peer and delivery.next_at > now:
                self.deliveries[delivery_id] = replace(delivery, next_at=now)

    async def pending_deliveries(self) -> int:
        return len(self.deliveries)


# ------------------------------------------------------------------- deliverer


@dataclass(frozen=True, slots=True)
class _Pass:
    """What one pass did; :meth:`Deliverer.run` starts the next at once if it was full."""

    fetched: int  # due deliveries read from the store
    attempted: int  # of which POSTed
    errors: int  # store operations that failed (their deliveries stay as they were)


class Deliverer:
    """Attempts due deliveries, applies the :class:`RetryPolicy`, keeps peers' circuits.

    ``post(url, body)`` must return on any 2xx and raise otherwise, preferably a
    :class:`~fedpetition.federation.fetch.FetchError` (its ``remote_status`` and
    ``retry_after`` drive the policy; any other exception is a transient failure).
    ``clock`` gives POSIX seconds; ``rng`` draws the jitter. At most ``concurrency``
    POSTs are in flight; ``run`` polls every ``poll_seconds`` for deliveries whose
    retry time came, and at once on :meth:`notify`.
    """

    def __init__(
        self,
        store: DeliveryStore,
        post: Callable[[str, bytes], Awaitable[None]],
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        concurrency: int = 32,
        poll_seconds: float = 5.0,
        policy: RetryPolicy = RetryPolicy(),  # frozen: sharing one default is safe
        batch_size: int = DUE_BATCH,
    ) -> None:
        if concurrency < 1 or batch_size < 1 or not poll_seconds > 0:
            raise LocalProtocolError("concurrency and batch_size >= 1, poll_seconds > 0")
        self.store = store
        self.policy = policy
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.on_failure: Callable[[], None] | None = None  # told of each failed attempt
        self._post = post
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        # Peer states are read-modify-written by concurrent attempts and by
        # peer_spoke; one lock keeps those updates from overwriting each other.
        self._peer_lock = asyncio.Lock()
        # Two overlapping passes would attempt the same due deliveries twice.
        self._pass_lock = asyncio.Lock()

    def _now(self) -> int:
        return int(self._clock())

    # -- the public surface -------------------------------------------------

    async def enqueue(self, peer: str, url: str, body: bytes) -> int:
        """Queue ``body`` for ``url`` (an inbox of ``peer``) and wake the loop; return its id.

        The delivery is durable once this returns, whatever happens to the process.
        """
        return (await self.enqueue_many([(peer, url, body)]))[0]

    async def enqueue_many(self, items: Sequence[tuple[str, str, bytes]]) -> list[int]:
        """Queue several deliveries ``(peer, url, body)`` at once: one durable write, then
        one wake-up, so that a fan-out to many followers leaves together."""
        if not items:
            return []
        ids = await self.store.enqueue_deliveries(items, self._now())
        self.notify()
        return ids

    def notify(self) -> None:
        """Wake :meth:`run` for a pass now instead of at its next poll."""
        self._wake.set()

    async def peer_spoke(self, peer: str) -> None:
        """The peer sent us a verified request, so it is up: close its circuit if open.

        Its queued deliveries are made due at once rather than at their next retry or
        probe: a node back from an outage gets what it missed as soon as it talks.
        Call only for requests whose signature was verified, or anyone could make us
        hammer a dead peer.
        """
        async with self._peer_lock:
            state = await self.store.peer_state(peer)
            if state.failures or state.unavailable:
                await self._revive(state, self._now(), "it contacted us")
            else:  # a backoff may survive from before a restart: cut it short too
                await self.store.wake_peer(peer, self._now())
                self.notify()

    async def deliver_due(self) -> int:
        """One pass over the due deliveries; return how many were attempted."""
        return (await self._deliver_pass()).attempted

    async def run(self) -> None:
        """Deliver forever: a pass, then wait for :meth:`notify` or ``poll_seconds``.

        A full pass (``batch_size`` due deliveries) is followed by another at once, so
        a backlog drains without waiting for polls. Failures are logged and the loop
        goes on: the store still holds every delivery, so the next pass retries.
        """
        while True:
            self._wake.clear()  # a notify() during the pass triggers the next one
            full = False
            try:
                done = await self._deliver_pass()
                full = done.fetched >= self.batch_size and done.errors == 0
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery pass failed; the queue is kept and retried")
            if full:
                await asyncio.sleep(0)
                continue
            await wait_event(self._wake, self.poll_seconds)

    # -- one pass -----------------------------------------------------------

    async def _deliver_pass(self) -> _Pass:
        async with self._pass_lock:
            now = self._now()
            due = await self.store.due_deliveries(now, self.batch_size)
            states: dict[str, PeerState] = {}
            probing: set[str] = set()
            attempts: list[tuple[Delivery, bool]] = []  # (delivery, is the peer's probe)
            held: dict[str, list[Delivery]] = {}  # to unavailable peers, not tried now
            for delivery in due:
                state = states.get(delivery.peer)
                if state is None:
                    state = states[delivery.peer] = await self.store.peer_state(delivery.peer)
                if not state.unavailable:
                    attempts.append((delivery, False))
                elif (
                    state.next_probe is None or now >= state.next_probe
                ) and delivery.peer not in probing:
                    probing.add(delivery.peer)
                    attempts.append((delivery, True))
                else:
                    held.setdefault(delivery.peer, []).append(delivery)
            errors = 0
            for peer, deliveries in held.items():
                errors += await self._hold(peer, deliveries, now)
            results = await asyncio.gather(*(self._attempt(d, probe) for d, probe in attempts))
            errors += results.count(False)
            return _Pass(len(due), len(attempts), errors)

    async def _hold(self, peer: str, deliveries: list[Delivery], now: int) -> int:
        """Park deliveries to an unavailable peer until its next probe; return store errors.

        Their attempts are not counted: the peer was not tried. They are moved out of
        the due set rather than left there because ``due_deliveries`` returns the
        oldest first: a dead peer's backlog would otherwise fill every batch and starve
        the live peers. Once the peer is back, :meth:`DeliveryStore.wake_peer` makes
        them due. The give-up age still applies, or a dead peer's queue would grow
        forever. Done under the peer lock, after a fresh read, so that a concurrent
        :meth:`peer_spoke` cannot be undone by parking after its wake.
        """
        errors = 0
        async with self._peer_lock:
            state = await self.store.peer_state(peer)
            if not state.unavailable:
                return 0  # revived meanwhile: they stay due for the next pass
            if state.next_probe is not None and state.next_probe > now:
                until = state.next_probe
            else:  # its probe goes in this pass: the next one is an interval away at least
                until = now + max(state.probe_interval, self.policy.probe_min_seconds)
            error = f"peer {peer} unavailable"
            for delivery in deliveries:
                step: Awaitable[None]
                if now - delivery.created >= self.policy.give_up_after_seconds:
                    log.warning(
                        "delivery %d to %s dropped: peer %s unavailable past the give-up age",
                        delivery.id, delivery.url, peer,
                    )
                    step = self.store.drop_delivery(delivery.id, error)
                else:
                    step = self.store.reschedule_delivery(
                        delivery.id, delivery.attempts, until, error
                    )
                if not await self._guarded(delivery, step):
                    errors += 1
        return errors

    async def _guarded(self, delivery: Delivery, step: Awaitable[None]) -> bool:
        """Run a store step for ``delivery``; log and report False if the store fails."""
        try:
            await step
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "delivery %d to %s: the store failed; it stays queued as it was",
                delivery.id, delivery.url,
            )
            return False
        return True

    async def _attempt(self, delivery: Delivery, probe: bool) -> bool:
        """POST one delivery and record the outcome; False if the store failed."""
        failure: Exception | None = None
        async with self._slots:
            try:
                await self._post(delivery.url, delivery.body)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever post raises, the loop must go on
                failure = exc
        if failure is None:
            return await self._guarded(delivery, self._succeeded(delivery))
        return await self._guarded(delivery, self._failed(delivery, failure, probe))

    # -- outcomes -----------------------------------------------------------

    async def _succeeded(self, delivery: Delivery) -> None:
        await self.store.delivered(delivery.id)
        log.debug("delivery %d to %s delivered", delivery.id, delivery.url)
        await self._peer_answered(delivery.peer)

    async def _failed(self, delivery: Delivery, exc: Exception, probe: bool) -> None:
        if self.on_failure is not None:
            self.on_failure()
        now = self._now()
        if is_permanent_failure(exc):
            log.warning("delivery %d to %s dropped: %s", delivery.id, delivery.url, exc)
            await self.store.drop_delivery(delivery.id, str(exc))
            if not isinstance(exc, ForbiddenAddressError):
                await self._peer_answered(delivery.peer)
            return
        if isinstance(exc, FetchError):
            error = str(exc)
            retry_after = exc.retry_after
            log.info("delivery %d to %s failed: %s", delivery.id, delivery.url, exc)
        else:
            error = f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
            retry_after = None
            log.warning(
                "delivery %d to %s failed unexpectedly", delivery.id, delivery.url, exc_info=exc
            )
        # The failure is counted before the delivery is rescheduled: stopped in
        # between, the node retries the delivery at once on restart, and knows the
        # peer failed, rather than waiting out a backoff nobody will cut short.
        await self._peer_failed(delivery.peer, now, probe)
        if now - delivery.created >= self.policy.give_up_after_seconds:
            log.warning(
                "delivery %d to %s dropped after %d attempts: gave up (%s)",
                delivery.id, delivery.url, delivery.attempts + 1, error,
            )
            await self.store.drop_delivery(delivery.id, f"gave up: {error}")
        else:
            delay = self.policy.retry_delay(delivery.attempts, retry_after, self._rng)
            await self.store.reschedule_delivery(
                delivery.id, delivery.attempts + 1, now + delay, error
            )

    async def _peer_answered(self, peer: str) -> None:
        """The peer answered an HTTP request: its consecutive failures end here.

        If it had failed before, its other deliveries wait out backoffs computed
        while it was down: they are made due now, as when it talks to us.
        """
        async with self._peer_lock:
            state = await self.store.peer_state(peer)
            if state.unavailable or state.failures:
                await self._revive(state, self._now(), "it answered")

    async def _peer_failed(self, peer: str, now: int, probe: bool) -> None:
        """Count a failure; open the circuit at the threshold; back off a failed probe.

        Only the probe moves the probe schedule: deliveries that were already in
        flight when the circuit opened fail too, and must not double the interval.
        """
        async with self._peer_lock:
            state = await self.store.peer_state(peer)
            failures = state.failures + 1
            if not state.unavailable and failures >= self.policy.breaker_failures:
                interval = self.policy.probe_min_seconds
                state = replace(
                    state,
                    failures=failures,
                    unavailable_since=now,
                    probe_interval=interval,
                    next_probe=now + interval,
                )
                log.warning(
                    "peer %s marked unavailable after %d consecutive failed deliveries",
                    peer, failures,
                )
            elif state.unavailable and probe:
                interval = min(
                    max(state.probe_interval, self.policy.probe_min_seconds) * 2,
                    self.policy.probe_max_seconds,
                )
                state = replace(
                    state, failures=failures, probe_interval=interval, next_probe=now + interval
                )
                log.info("peer %s still unavailable; next probe in %d s", peer, interval)
            else:
                state = replace(state, failures=failures)
            await self.store.set_peer_state(state)

    async def _revive(self, state: PeerState, now: int, why: str) -> None:
        """Close an open circuit and make the peer's deliveries due (peer lock held)."""
        await self.store.set_peer_state(PeerState(state.name))
        await self.store.wake_peer(state.name, now)
        if state.unavailable:
            log.info("peer %s available again (%s)", state.name, why)
        self.notify()
