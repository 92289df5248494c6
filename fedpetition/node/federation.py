"""A node in the federation: hosting, activities, witnessing, the federated count.

Between the HTTP handlers of ``routes/federation.py`` and the node's storage,
as :mod:`fedpetition.node.service` is for signers and organisers:

* **Hosting.** An association joins a petition started elsewhere (:meth:`host`):
  the origin's signed versions and roster are fetched, checked against the
  origin's key (pinned from then on), stored, and an ``Announce`` goes to the
  origin. The origin records the request and accepts it (automatically for the
  nodes its config names, else when an organiser does): it signs a new roster
  with the host added and a witness policy over all hosts (:func:`witness_policy`),
  answers ``Accept`` and sends ``Update`` with the new roster to every follower.
* **Activities** arrive at the inbox signed (spec §14); :meth:`receive` applies
  the origin rules, refuses replays and dispatches. Everything that goes out is
  queued in storage and delivered by :class:`~fedpetition.federation.delivery.Deliverer`.
* **Witnessing.** :meth:`add_checkpoint` is the C2SP tlog-witness endpoint for
  the logs of every petition this node takes part in, with its state kept by a
  compare-and-swap in storage and split views recorded as evidence.
* **Publishing.** After each sequencer batch, :meth:`_publish` asks the other
  hosts to cosign the new checkpoint; once the roster's quorum is met the
  cosigned checkpoint becomes the one the node serves, and followers get an
  ``Update`` carrying it.
* **The federated count** of each petition is kept by following every host's
  log (:mod:`fedpetition.core.follow`): each new witnessed checkpoint is checked
  entry by entry against its root, and the logs are merged by the rule of §9.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fedpetition import __version__
from fedpetition.core import names, nullifiers, tiles, voprf
from fedpetition.core.addresses import canonical_mailbox
from fedpetition.core.documents import (
    Host,
    HostRoster,
    PetitionVersion,
    SignedDocument,
    open_roster,
    open_versions,
    reference_witness_policy,
    sign_roster,
)
from fedpetition.core.entries import coarse_time
from fedpetition.core.errors import DecodeError, FedPetitionError, RemoteProtocolError
from fedpetition.core.follow import FollowedLog, LogFollower, federated_tally
from fedpetition.core.log import open_log_checkpoint
from fedpetition.core.logcheck import PetitionRules
from fedpetition.core.merkle import consistency_proof
from fedpetition.core.notes import (
    Checkpoint,
    VerifierKey,
    add_signature_lines,
    verify_cosignature_line,
)
from fedpetition.core.tally import Tally
from fedpetition.core.verification import Report, Verification
from fedpetition.core.witness import Witness, WitnessError, encode_add_checkpoint
from fedpetition.federation import activities as acts
from fedpetition.federation import httpsig
from fedpetition.federation.delivery import Deliverer, wait_event
from fedpetition.federation.documents import Actor, actor_document, nodeinfo, webfinger
from fedpetition.federation.fetch import Fetcher, FetchError
from fedpetition.federation.peers import MAX_AGE, MAX_SKEW, Peers
from fedpetition.node.errors import NodeError
from fedpetition.node.sequencer import PetitionLog
from fedpetition.node.service import RESERVED_SLUGS, InputError, Node, PetitionView
from fedpetition.node.storage import PetitionRecord, SignatureRecord
from fedpetition.node.storage.base import (
    REQUEST_ACCEPTED,
    REQUEST_PENDING,
    REQUEST_REJECTED,
    Follower,
    HostRequest,
    note_size,
)

log = logging.getLogger("fedpetition.federation")

WITNESS_PATH = "/witness/add-checkpoint"
SEEN_SECONDS = 2 * 86400  # activity ids are remembered well past the signature window
COSIGN_RETRY_SECONDS = 15.0  # a checkpoint short of its quorum is offered again after this
FETCH_CONCURRENCY = 8  # entry bundles fetched at once from one host
EVALUATE_PATH = "/petitions/{slug}/evaluate"
MAX_EVALUATION_BATCH = 256  # blinded elements in one request to the origin
EVALUATIONS_PER_HOST_PER_HOUR = 3600  # requests, each of at most MAX_EVALUATION_BATCH
NULLIFIER_RETRY_SECONDS = 5.0  # a host waits this long after the origin failed to answer
USER_AGENT = f"fedpetition/{__version__}"
VERIFY_MAX_AGE = 600.0  # seconds a "verify this count" result is shown before a new run
VERIFY_FETCH_SECONDS = 30.0  # for one file the verification reads


class ReplayError(RemoteProtocolError):
    """The activity id was received before (409)."""

    status = 409


@dataclass
class LogStatus:
    """One host's log as this node last saw it."""

    host: str
    size: int = 0
    counted: int = 0
    cosigners: tuple[str, ...] = ()
    problem: str | None = None  # why it is not (fully) counted, if it is not


@dataclass
class FederatedCount:
    """A petition's federated tally as this node computed it."""

    tally: Tally | None = None
    logs: list[LogStatus] = field(default_factory=list)
    updated: float = 0.0
    followers: dict[str, LogFollower] = field(default_factory=dict)
    roster_serial: int = 0


class Federation:
    """The federated side of one node."""

    def __init__(self, node: Node, fetcher: Fetcher,
                 clock: Callable[[], float] = time.time) -> None:
        self.node = node
        self.storage = node.storage
        self.clock = clock
        self.base_url = node.config.node.public_url.rstrip("/")
        self.peers = Peers(fetcher, node.signer, self.base_url, clock)
        self.deliverer = Deliverer(node.storage, self.peers.post_activity, clock=clock)
        self.deliverer.on_failure = node.metrics.delivery_failures.inc
        self.accept_hosts = frozenset(node.config.federation.accept_hosts)
        self.counts: dict[int, FederatedCount] = {}
        self._count_locks: dict[int, asyncio.Lock] = {}
        self._witness_sizes: dict[tuple[str, str], int] = {}  # (log, witness) -> size cosigned
        self._dirty: set[int] = set()
        self._publishers: dict[int, asyncio.Task[None]] = {}
        self._refreshers: dict[int, asyncio.Future[None]] = {}
        self._pushed: dict[int, dict[str, str]] = {}  # petition -> host -> pushed checkpoint
        self._following: set[tuple[int, str]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._leading: set[asyncio.Task[Any]] = set()  # while this process sequences
        self._leader = False  # this process holds the sequencer lease (see _lead)
        self._published_under: dict[int, bytes] = {}  # petition -> roster last reconciled
        self._verified: dict[int, Verified] = {}  # petition -> its latest verification
        self._verify_pool = ThreadPoolExecutor(1, thread_name_prefix="fedpetition-verify")
        self._retries: dict[int, asyncio.TimerHandle] = {}  # petition -> next cosigning round
        self._closed = False
        self._nullifiers_wanted = asyncio.Event()
        node.federation = self
        node.sequencer.on_commit = self._committed

    @property
    def name(self) -> str:
        return self.node.name

    def now(self) -> int:
        return int(self.clock())

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed: %s", task.get_name(), task.exception())

    async def close(self) -> None:
        self._closed = True
        for timer in self._retries.values():
            timer.cancel()
        running = [*self._tasks, *self._leading, *self._publishers.values(),
                   *self._refreshers.values()]
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._verify_pool.shutdown(wait=False, cancel_futures=True)
        await self.peers.fetcher.close()

    # -- documents ------------------------------------------------------------
    def actor(self) -> dict[str, Any]:
        signer = self.node.signer
        return actor_document(self.base_url, self.name, signer.public_key,
                              str(signer.verifier_key()))

    def petition_url(self, record: PetitionRecord) -> str:
        if record.origin_url is not None:
            return record.origin_url
        return acts.petition_url(self.base_url, record.slug)

    def petition_object(self, view: PetitionView) -> dict[str, Any]:
        record = view.record
        if not record.is_local:
            raise InputError("this node hosts the petition; its origin publishes it",
                             status=404, code="not_found")
        latest = view.latest
        return acts.petition_object(
            self.base_url, record.slug, latest.title[latest.languages[0]], record.versions,
            record.roster, page=f"{self.base_url}/p/{record.slug}", closed=not record.is_open)

    async def webfinger(self, resource: str) -> dict[str, Any] | None:
        petitions = {r.slug: acts.petition_url(self.base_url, r.slug)
                     for r in await self.storage.petitions() if r.is_local}
        return webfinger(resource, self.base_url, self.name, petitions)

    async def nodeinfo(self) -> dict[str, Any]:
        views = await self.node.petitions()
        organisers = await self.storage.organiser_count()
        return nodeinfo(__version__, petitions=sum(v.record.is_local for v in views),
                        signatures=sum(v.count for v in views), organisers=organisers)

    def roster(self, record: PetitionRecord) -> HostRoster:
        return self.node.roster(record)

    # -- joining a petition started elsewhere ---------------------------------
    async def host(self, url: str, slug: str | None = None) -> PetitionView:
        """Start hosting the petition at ``url`` (on its origin): store it, Announce."""
        try:
            petition_id = acts.petition_id_of_url(url)
        except DecodeError as e:
            raise InputError(str(e), field="url") from e
        origin = names.petition_origin(petition_id)
        if origin == self.name:
            raise InputError("this node is the petition's origin", status=409, field="url")
        actor = await self.peers.node_actor(origin)
        obj = acts.parse_petition_object(await self.peers.get_activity(url))
        if obj.petition_id != petition_id:
            raise InputError("the origin served another petition", status=502, field="url")
        _check_documents(obj, actor.verifier_key)
        local = slug or petition_id.split("/", 1)[1]
        try:
            names.check_slug(local)
        except FedPetitionError as e:
            raise InputError(str(e), field="slug") from e
        if local in RESERVED_SLUGS:
            raise InputError(f"the name {local!r} is reserved", field="slug")
        try:
            await self.storage.create_hosted_petition(
                local, petition_id, obj.versions, obj.roster, str(actor.verifier_key), obj.url,
                self.now())
        except NodeError as e:
            raise InputError(str(e), status=409, field="slug") from e
        await self._send(actor, acts.activity("Announce", acts.new_activity_id(self.base_url),
                                              self.peers.actor_id, obj.url))
        view = await self.node.petition(local)
        await self._follow_hosts(view.record)
        return view

    # -- the organiser's answer to a hosting request ---------------------------
    async def host_requests(self, view: PetitionView) -> list[HostRequest]:
        return await self.storage.host_requests(view.record.id)

    async def answer_host(self, view: PetitionView, node: str, accept: bool) -> HostRequest:
        record = view.record
        request = next((r for r in await self.storage.host_requests(record.id)
                        if r.node == node), None)
        if request is None:
            raise InputError(f"{node} did not ask to host this petition", status=404,
                             code="not_found")
        if accept:
            if not record.is_open:
                raise InputError("the petition is closed: it takes no new hosts", status=409,
                                 code="closed")
            return await self._accept_host(record, request)
        answered = HostRequest(record.id, node, request.vkey, request.inbox, request.activity,
                               REQUEST_REJECTED, self.now())
        await self.storage.put_host_request(answered)
        await self._send_to(request.inbox, acts.activity(
            "Reject", acts.new_activity_id(self.base_url), self.peers.actor_id,
            request.activity, target=self.petition_url(record)))
        return answered

    async def _accept_host(self, record: PetitionRecord, request: HostRequest) -> HostRequest:
        roster = self.roster(record)
        if all(h.name != request.node for h in roster.hosts):
            hosts = (*roster.hosts, Host(request.node, VerifierKey.parse(request.vkey)))
            new = HostRoster(record.petition_id, roster.serial + 1, hosts,
                             reference_witness_policy(hosts))
            await self.storage.set_roster(record.id, sign_roster(new, self.node.signer).encode())
        accepted = HostRequest(record.id, request.node, request.vkey, request.inbox,
                               request.activity, REQUEST_ACCEPTED, self.now())
        await self.storage.put_host_request(accepted)
        # A host follows the petition: it gets every new version, roster and checkpoint.
        await self.storage.add_follower(Follower(record.id, self.peers.actor_of(request.node),
                                                 request.inbox, request.activity))
        await self._send_to(request.inbox, acts.activity(
            "Accept", acts.new_activity_id(self.base_url), self.peers.actor_id,
            request.activity, target=self.petition_url(record)))
        fresh = await self.storage.petition_by_id(record.id)
        assert fresh is not None
        await self.petition_changed(fresh)
        log.info("%s now hosts %s", request.node, record.petition_id)
        return accepted

    async def petition_changed(self, record: PetitionRecord) -> None:
        """Tell followers about a new version or roster of one of our petitions.

        A petition its organisers closed is withdrawn: followers get a ``Delete``
        and stop taking signatures for it (its logs stay published and verifiable).
        """
        view = await self.node.view_of(record)
        if not record.is_open:
            await self._to_followers(record, acts.activity(
                "Delete", acts.new_activity_id(self.base_url), self.peers.actor_id,
                self.petition_url(record)))
            return
        update = acts.activity("Update", acts.new_activity_id(self.base_url),
                               self.peers.actor_id, self.petition_object(view))
        await self._to_followers(record, update)
        self._roster_changed(view)

    def _roster_changed(self, view: PetitionView) -> None:
        self._schedule_publish(view.log)  # the witness policy may have changed
        self._spawn(self._follow_hosts(view.record), "follow hosts")
        self._request_refresh(view.record.id)

    async def _follow_hosts(self, record: PetitionRecord) -> None:
        """Subscribe to the checkpoints of every other host of the petition."""
        roster = self.roster(record)
        if all(h.name != self.name for h in roster.hosts):
            return
        for host in roster.hosts:
            if host.name == self.name or (record.id, host.name) in self._following:
                continue
            self._following.add((record.id, host.name))
            try:
                actor = await self.peers.node_actor(host.name)
            except RemoteProtocolError as e:
                self._following.discard((record.id, host.name))
                log.warning("cannot follow %s for %s yet: %s", host.name, record.petition_id, e)
                continue
            await self._send(actor, acts.activity(
                "Follow", acts.new_activity_id(self.base_url), self.peers.actor_id,
                self.petition_url(record)))

    # -- the inbox ------------------------------------------------------------
    async def receive(self, actor: Actor, doc: object) -> None:
        """Apply one activity signed by ``actor`` (already authenticated)."""
        activity = acts.parse_activity(doc, actor.id)
        now = self.now()
        if not await self.storage.remember_activity(activity.id, now + SEEN_SECONDS, now):
            raise ReplayError(f"activity {activity.id[:200]} was already received")
        await self.deliverer.peer_spoke(actor.node_name)
        handler = getattr(self, f"_on_{activity.type.lower()}")
        try:
            await handler(actor, activity)
        except BaseException:
            # Not applied: a redelivery must not be refused as a replay.
            await self.storage.forget_activity(activity.id)
            raise

    async def _local(self, url: str) -> PetitionRecord:
        record = await self.storage.petition_by_petition_id(acts.petition_id_of_url(url))
        if record is None:
            raise InputError("no such petition here", status=404, code="not_found")
        return record

    async def _hosted_from(self, actor: Actor, url: str | None) -> PetitionRecord:
        """A petition we host whose origin is ``actor`` (the only node that speaks for it)."""
        if url is None:
            raise DecodeError("the activity names no petition (target)")
        record = await self._local(url)
        if record.is_local or names.petition_origin(record.petition_id) != actor.node_name:
            raise acts.OriginError(f"{actor.node_name} is not the origin of this petition")
        return record

    async def _on_announce(self, actor: Actor, activity: acts.Activity) -> None:
        record = await self._local(activity.object_id)
        if not record.is_local:
            raise InputError("this node is not the petition's origin", status=404,
                             code="not_found")
        request = HostRequest(record.id, actor.node_name, str(actor.verifier_key), actor.inbox,
                              activity.id, REQUEST_PENDING, self.now())
        if any(h.name == actor.node_name for h in self.roster(record).hosts):
            # Already a host (a repeated Announce): confirm again, change nothing.
            await self._send(actor, acts.activity(
                "Accept", acts.new_activity_id(self.base_url), self.peers.actor_id,
                activity.id, target=self.petition_url(record)))
            return
        if not record.is_open:
            await self.storage.put_host_request(request)
            view = await self.node.view_of(record)
            await self.answer_host(view, actor.node_name, False)
            return
        await self.storage.put_host_request(request)
        if "*" in self.accept_hosts or actor.node_name in self.accept_hosts:
            await self._accept_host(record, request)
        else:
            log.info("%s asks to host %s: waiting for an organiser", actor.node_name,
                     record.petition_id)

    async def _on_create(self, actor: Actor, activity: acts.Activity) -> None:
        """A node announces a petition it started: noted, never joined on its own.

        Whether to co-host a petition is an association's decision (``host``).
        """
        obj = acts.parse_petition_object(activity.object)
        if names.petition_origin(obj.petition_id) != actor.node_name:
            raise acts.OriginError("only a petition's origin may create it")
        log.info("%s started petition %s", actor.node_name, obj.url)

    async def _on_accept(self, actor: Actor, activity: acts.Activity) -> None:
        if activity.target is None:
            return  # the Accept of a Follow: nothing to do
        record = await self._hosted_from(actor, activity.target)
        obj = acts.parse_petition_object(await self.peers.get_activity(self.petition_url(record)))
        await self._apply_petition(actor, obj)

    async def _on_reject(self, actor: Actor, activity: acts.Activity) -> None:
        record = await self._hosted_from(actor, activity.target)
        await self.storage.close_petition(record.id, self.now())
        log.warning("the origin of %s refused this node as a host", record.petition_id)

    async def _on_update(self, actor: Actor, activity: acts.Activity) -> None:
        assert activity.object is not None
        kind = activity.object.get("type")
        if kind == acts.PETITION_TYPE:
            await self._apply_petition(actor, acts.parse_petition_object(activity.object))
        elif kind == acts.CHECKPOINT_TYPE:
            await self._on_checkpoint(actor, acts.parse_checkpoint_object(activity.object))
        else:
            raise DecodeError(f"cannot Update an object of type {str(kind)[:40]!r}")

    async def _on_delete(self, actor: Actor, activity: acts.Activity) -> None:
        record = await self._hosted_from(actor, activity.object_id)
        await self.storage.close_petition(record.id, self.now())

    async def _on_follow(self, actor: Actor, activity: acts.Activity) -> None:
        record = await self._local(activity.object_id)
        await self.storage.add_follower(Follower(record.id, actor.id, actor.inbox, activity.id))
        await self._send(actor, acts.activity("Accept", acts.new_activity_id(self.base_url),
                                              self.peers.actor_id, activity.id))
        # The new follower gets the current checkpoint at once.
        view = await self.node.view_of(record)
        if view.hosting:
            await self._send(actor, self._checkpoint_update(record, view.log))
            if any(h.name == actor.node_name for h in view.roster.hosts):
                # A host follows once it knows the roster: it now witnesses our log.
                self._schedule_publish(view.log)

    async def _on_undo(self, actor: Actor, activity: acts.Activity) -> None:
        assert activity.object is not None
        record = await self._local(str(activity.object.get("object")))
        await self.storage.remove_follower(record.id, actor.id)

    async def _apply_petition(self, actor: Actor, obj: acts.PetitionObject) -> None:
        """Take the origin's new versions and roster of a petition this node hosts."""
        if names.petition_origin(obj.petition_id) != actor.node_name:
            raise acts.OriginError("only a petition's origin may update it")
        record = await self._hosted_from(actor, obj.url)
        assert record.origin_key is not None
        versions, roster = _check_documents(obj, VerifierKey.parse(record.origin_key))
        known = len(record.versions)
        if obj.versions[:known] != record.versions[:len(obj.versions)]:
            raise DecodeError("the petition's earlier versions changed")
        for number in range(known + 1, len(versions) + 1):
            await self.storage.add_version(record.id, number, obj.versions[number - 1],
                                           self.now())
        roster_changed = roster.serial > self.roster(record).serial
        if roster_changed:
            await self.storage.set_roster(record.id, obj.roster)
        if obj.closed and record.is_open:
            await self.storage.close_petition(record.id, self.now())
        fresh = await self.storage.petition_by_id(record.id)
        assert fresh is not None
        self.node.sequencer.refresh_versions(fresh)
        if roster_changed:
            self._roster_changed(await self.node.view_of(fresh))

    async def _on_checkpoint(self, actor: Actor, obj: acts.CheckpointObject) -> None:
        record = await self._local(obj.petition)
        roster = self.roster(record)
        if all(h.name != actor.node_name for h in roster.hosts):
            raise acts.OriginError(f"{actor.node_name} is not a host of this petition")
        if obj.log != names.log_origin(actor.node_name, record.petition_id):
            raise acts.OriginError("a host may only publish checkpoints of its own log")
        self._request_refresh(record.id, {actor.node_name: obj.note})

    # -- sending --------------------------------------------------------------
    async def _send(self, actor: Actor, activity: dict[str, Any]) -> None:
        await self._send_to(actor.inbox, activity)

    async def _send_to(self, inbox: str, activity: dict[str, Any]) -> None:
        """Queue ``activity`` for the inbox; the queue keys its peer by node name."""
        await self.deliverer.enqueue(_peer_name(inbox), inbox, _json(activity))

    async def _to_followers(self, record: PetitionRecord, activity: dict[str, Any]) -> None:
        body = _json(activity)
        await self.deliverer.enqueue_many([(_peer_name(f.inbox), f.inbox, body)
                                           for f in await self.storage.followers(record.id)])

    def _checkpoint_update(self, record: PetitionRecord, current: PetitionLog
                           ) -> dict[str, Any]:
        note = current.published.decode()
        size = int(note.split("\n", 2)[1])
        return acts.activity(
            "Update", acts.new_activity_id(self.base_url), self.peers.actor_id,
            acts.checkpoint_object(self.base_url, self.petition_url(record), current.origin,
                                   size, note))

    # -- the witness ----------------------------------------------------------
    async def add_checkpoint(self, body: bytes) -> str:
        """tlog-witness ``add-checkpoint``: the cosignature line, or a WitnessError."""
        logs: dict[str, VerifierKey] = {}
        for record in await self.storage.petitions():
            roster = self.roster(record)
            if any(h.name == self.name for h in roster.hosts):
                for host in roster.hosts:
                    if host.name != self.name:
                        logs[names.log_origin(host.name, record.petition_id)] = host.key
        for _ in range(3):
            witness = Witness(self.node.signer, logs, await self.storage.witnessed(list(logs)))
            try:
                result = witness.add_checkpoint(body, self.now())
            except WitnessError as e:
                evidence = getattr(e, "evidence", None)
                if evidence is not None:
                    await self.storage.add_evidence(evidence, self.now())
                    log.warning("split view: %s (evidence recorded)", e)
                raise
            if await self.storage.update_witnessed(result.origin, result.previous,
                                                   result.record):
                return result.cosignature
        raise InputError("the witness state changed meanwhile; try again", status=503,
                         code="busy")

    # -- publishing our checkpoints ------------------------------------------
    async def _committed(self, current: PetitionLog) -> None:
        """A new checkpoint of one of our logs: serve it, once cosigned if the policy asks.

        With no quorum to meet it is served at once (the sequencer awaits this);
        otherwise cosignatures are gathered in the background.
        """
        if not await self._publish(current.petition, gather=False):
            self._schedule_publish(current)

    def _schedule_publish(self, current: PetitionLog) -> None:
        """Gather cosignatures for the log's latest checkpoint (coalesced per log); the
        sequencing process does (:meth:`_lead` starts it for what others left)."""
        if self._closed or not self._leader:
            return
        self._dirty.add(current.petition)
        task = self._publishers.get(current.petition)
        if task is None or task.done():
            with contextlib.suppress(RuntimeError):  # no running loop: published at start
                self._publishers[current.petition] = asyncio.get_running_loop().create_task(
                    self._publish_loop(current.petition), name=f"publish {current.origin}")

    async def _publish_loop(self, petition: int) -> None:
        while petition in self._dirty:
            self._dirty.discard(petition)
            try:
                done = await self._publish(petition)
            except (FedPetitionError, OSError) as e:
                log.warning("publishing a checkpoint failed: %s", e)
                done = False
            if not done:
                loop = asyncio.get_running_loop()
                current = self.node.sequencer.logs.get(petition)
                if current is not None:
                    previous = self._retries.get(petition)
                    if previous is not None:
                        previous.cancel()
                    self._retries[petition] = loop.call_later(
                        COSIGN_RETRY_SECONDS, self._schedule_publish, current)

    async def _publish(self, petition: int, *, gather: bool = True) -> bool:
        """Serve the log's latest checkpoint once it meets the policy; True once served.

        Without ``gather``, only a checkpoint that needs no cosignature is served.
        """
        record = await self.storage.petition_by_id(petition)
        current = self.node.sequencer.logs.get(petition)
        if record is None or current is None:
            return True
        roster = self.roster(record)
        if all(h.name != self.name for h in roster.hosts):
            return True  # not (yet) a host: nothing of ours counts
        note, checkpoint = current.note, current.checkpoint
        policy = roster.policy
        lines: list[str] = []
        if policy.quorum and not gather:
            return False
        if policy.quorum:
            eligible = policy.eligible(roster.host(self.name).key)
            answers = await asyncio.gather(*(self._cosign(record, current, checkpoint, note, w)
                                             for w in eligible))
            lines = [line for line in answers if line is not None]
            if len(lines) < policy.quorum:
                log.info("checkpoint %d of %s has %d of %d cosignatures: not served yet",
                         checkpoint.size, current.origin, len(lines), policy.quorum)
                return False
        published = add_signature_lines(note.decode(), lines).encode() if lines else note
        if not await self.storage.set_published(petition, published, checkpoint.size):
            return True  # a larger one was published meanwhile
        if current.checkpoint.size >= checkpoint.size:
            current.published = published
        await self._to_followers(record, self._checkpoint_update(record, current))
        self._request_refresh(petition)
        return True

    async def _cosign(self, record: PetitionRecord, current: PetitionLog, checkpoint: Checkpoint,
                      note: bytes, witness: VerifierKey) -> str | None:
        key = (current.origin, witness.name)
        old = self._witness_sizes.get(key, 0)
        try:
            url = self.peers.base_of(witness.name) + WITNESS_PATH
        except FedPetitionError:
            log.warning("witness %s of %s is not a node: nowhere to ask", witness.name,
                        current.origin)
            return None
        for _ in range(3):
            if old > checkpoint.size:
                log.warning("%s cosigned %s up to %d, beyond our %d", witness.name,
                            current.origin, old, checkpoint.size)
                return None
            proof: list[bytes] = []
            if 0 < old < checkpoint.size:
                proof = await self.node.log_proof(
                    record.id, checkpoint.size,
                    functools.partial(consistency_proof, old, checkpoint.size))
            body = encode_add_checkpoint(old, proof, note.decode())
            try:
                answer = await self.peers.post(url, body, "text/plain; charset=utf-8")
            except FetchError as e:
                if e.remote_status == 409 and e.body.strip().isdigit():
                    old = int(e.body.strip())  # tlog-witness: the size it has, try from there
                    continue
                log.info("%s did not cosign %s at %d: %s", witness.name, current.origin,
                         checkpoint.size, e)
                return None
            line = answer.body.decode("utf-8", "replace").rstrip("\n")
            try:
                verify_cosignature_line(checkpoint.body(), line, witness)
            except FedPetitionError as e:
                log.warning("%s sent an invalid cosignature: %s", witness.name, e)
                return None
            self._witness_sizes[key] = checkpoint.size
            return line
        return None

    # -- nullifiers (spec §4.4) ------------------------------------------------
    async def evaluate(self, actor: Actor, slug: str, body: object) -> dict[str, Any]:
        """The origin blindly evaluates a host's batch of nullifier inputs, with a proof."""
        view = await self.node.petition(slug)
        record = view.record
        if not record.is_local:
            raise InputError("this node is not the petition's origin", status=404,
                             code="not_found")
        host = next((h for h in view.roster.hosts if h.name == actor.node_name), None)
        if host is None or actor.node_name == self.name:
            raise acts.OriginError(f"{actor.node_name} is not a host of this petition")
        if host.key.public_key != actor.public_key:
            # The roster pins each host's key: a node whose web server or domain was taken
            # over, but not its key, gets nothing in its name.
            raise acts.OriginError(f"{actor.node_name} signed with a key the roster does not "
                                   "list for it")
        if not isinstance(body, dict) or not isinstance(body.get("blinded"), list):
            raise DecodeError("send {\"blinded\": [base64 elements]}")
        blinded = [acts.unb64(item, "blinded element") for item in body["blinded"]]
        if not 1 <= len(blinded) <= MAX_EVALUATION_BATCH:
            raise DecodeError(f"send 1 to {MAX_EVALUATION_BATCH} blinded elements")
        await self.node.limit(f"evaluate:{actor.node_name}:{record.id}",
                              EVALUATIONS_PER_HOST_PER_HOUR)
        secret, public = self.node.data_key.oprf_key_pair(record.petition_id)
        evaluated, proof = await asyncio.to_thread(voprf.blind_evaluate, secret, public,
                                                   blinded)
        # Counted durably before the answer leaves: the published counts never lag
        # behind what a host could have turned into nullifiers.
        await self.storage.add_evaluations(record.id, actor.node_name, len(blinded))
        return {"evaluated": [acts.b64(e) for e in evaluated], "proof": acts.b64(proof)}

    async def refuse_replay(self, key_id: str, nonce: str | None) -> None:
        """Refuse a signed request without a nonce (401) or whose nonce was seen (409).

        The nonce is a signature parameter, so it cannot be changed without the key; it
        is remembered as long as the signature could still be accepted (spec §14.5).
        """
        if not nonce:
            raise httpsig.MissingSignatureError("this request's signature must carry a nonce")
        now = self.now()
        seen = "nonce:" + hashlib.sha256(f"{key_id}\n{nonce}".encode()).hexdigest()
        if not await self.storage.remember_activity(seen, now + MAX_AGE + MAX_SKEW, now):
            raise ReplayError("this signed request was already received")

    def nullifiers_wanted(self) -> None:
        """A host's signer confirmed: ask the origin for nullifiers now."""
        self._nullifiers_wanted.set()

    async def _nullifier_loop(self) -> None:
        while not self._closed:
            self._nullifiers_wanted.clear()
            delay = 1.0
            try:
                if not await self.fetch_nullifiers():
                    delay = NULLIFIER_RETRY_SECONDS
            except (FedPetitionError, OSError) as e:
                log.warning("getting nullifiers failed: %s", e)
                delay = NULLIFIER_RETRY_SECONDS
            except Exception:  # never let the loop die: the signatures would wait forever
                log.exception("getting nullifiers failed")
                delay = NULLIFIER_RETRY_SECONDS
            await wait_event(self._nullifiers_wanted, delay)

    async def fetch_nullifiers(self) -> bool:
        """Get the nullifiers of confirmed signatures on hosted petitions from their origins.

        The inputs are blinded (the origin learns nothing about the addresses), the
        origin's batched proof is checked against the key in the signed petition
        document, then the nullifiers are stored and the entries queued. Returns
        False if an origin could not be reached (the signatures wait, nothing lost).
        """
        awaiting = await self.storage.awaiting_nullifiers(MAX_EVALUATION_BATCH * 4)
        by_petition: dict[int, list[SignatureRecord]] = {}
        for item in awaiting:
            by_petition.setdefault(item.petition, []).append(item)
        reached = True
        for petition, items in by_petition.items():
            record = await self.storage.petition_by_id(petition)
            if record is None:
                continue
            for start in range(0, len(items), MAX_EVALUATION_BATCH):
                batch = items[start:start + MAX_EVALUATION_BATCH]
                try:
                    done = await self._nullifiers_for(record, batch)
                except FedPetitionError as e:
                    log.warning("the origin of %s gave no nullifiers: %s", record.petition_id,
                                e)
                    reached = False
                    break
                await self.storage.set_nullifiers(done)
        return reached

    async def _nullifiers_for(self, record: PetitionRecord, batch: list[SignatureRecord]
                              ) -> list[tuple[int, bytes]]:
        view = await self.node.view_of(record)
        if record.is_local:  # confirmed before the node knew itself the origin: none left
            return [(item.id, nullifier) for item in batch if (nullifier := self.node.
                    local_nullifier(record, self.node.signer_email(item, record))) is not None]
        # spec §4.4, §4.6: the input names the canonical mailbox, as the origin's own
        # signers' do (Node.local_nullifier), so aliases get one nullifier.
        inputs = [nullifiers.nullifier_input(
            record.petition_id, canonical_mailbox(self.node.signer_email(item, record)))
                  for item in batch]
        blinds, blinded = zip(*(voprf.blind(data) for data in inputs), strict=True)
        url = record.origin_url
        assert url is not None
        slug = url.rsplit("/", 1)[1]
        origin = self.peers.base_of(names.petition_origin(record.petition_id))
        answer = await self.peers.post(
            origin + EVALUATE_PATH.format(slug=slug),
            _json({"blinded": [acts.b64(b) for b in blinded]}), "application/json")
        try:
            body = json.loads(answer.body)
            evaluated = [acts.unb64(e, "evaluated element") for e in body["evaluated"]]
            proof = acts.unb64(body["proof"], "proof")
        except (ValueError, KeyError, TypeError) as e:
            raise DecodeError(f"the origin's evaluation is malformed: {e}") from e
        outputs = voprf.finalize(inputs, list(blinds), evaluated, list(blinded), proof,
                                 view.latest.oprf_key)
        return [(item.id, nullifiers.nullifier(output))
                for item, output in zip(batch, outputs, strict=True)]

    # -- the federated count --------------------------------------------------
    def _request_refresh(self, petition: int, notes: Mapping[str, str] | None = None) -> None:
        """Refresh the petition's count soon; requests arriving meanwhile are merged.

        Checkpoints pushed by hosts are kept (the latest per host) for that refresh.
        """
        if self._closed:
            return
        if notes:
            self._pushed.setdefault(petition, {}).update(notes)
        task = self._refreshers.get(petition)
        if task is None or task.done():
            self._refreshers[petition] = asyncio.ensure_future(self._refresh_soon(petition))

    async def _refresh_soon(self, petition: int) -> None:
        try:
            await self.refresh_count(petition)
        except (FedPetitionError, OSError) as e:
            log.warning("refreshing a federated count failed: %s", e)

    async def refresh_count(self, petition: int) -> FederatedCount | None:
        """Bring the petition's federated count up to the hosts' latest witnessed checkpoints.

        Checkpoints hosts pushed since the last refresh are used; the others are
        fetched. The logs are merged again (§9) only when one of them grew.
        """
        lock = self._count_locks.setdefault(petition, asyncio.Lock())
        async with lock:
            notes = self._pushed.pop(petition, {})
            record = await self.storage.petition_by_id(petition)
            if record is None:
                return None
            view = await self.node.view_of(record)
            roster = view.roster
            count = self.counts.get(petition) or FederatedCount()
            changed = count.tally is None or count.roster_serial != roster.serial
            if count.roster_serial != roster.serial:
                count.followers = {h.name: count.followers.get(h.name) or LogFollower(
                    names.log_origin(h.name, record.petition_id)) for h in roster.hosts}
                count.roster_serial = roster.serial
            digests = {SignedDocument.decode(d).digest: n
                       for n, d in enumerate(record.versions, start=1)}
            rules = PetitionRules(
                earliest={d: coarse_time(view.versions[n - 1].created)
                          for d, n in digests.items()},
                deadline=view.latest.deadline)
            before = [(f.size, f.failure) for f in count.followers.values()]
            count.logs = list(await asyncio.gather(*(
                self._follow_log(record, view, host, count.followers[host.name], rules,
                                 notes.get(host.name))
                for host in roster.hosts)))
            if changed or before != [(f.size, f.failure) for f in count.followers.values()]:
                count.tally = federated_tally(
                    [FollowedLog(h.name, count.followers[h.name]) for h in roster.hosts],
                    digests)
            count.updated = self.clock()
            self.counts[petition] = count
            return count

    async def _follow_log(self, record: PetitionRecord, view: PetitionView, host: Host,
                          follower: LogFollower, rules: PetitionRules,
                          note: str | None) -> LogStatus:
        status = LogStatus(host.name, follower.size, _counted(follower))
        own = host.name == self.name
        base = self.peers.base_of(host.name)
        prefix = f"/log/{record.petition_id}"
        try:
            if note is None:
                note = (view.log.published.decode() if own else
                        (await self.peers.get(base + prefix + "/checkpoint",
                                              "text/plain")).body.decode())
            policy = view.roster.policy
            checkpoint, cosigners = open_log_checkpoint(note, follower.origin, host.key,
                                                        policy.eligible(host.key))
            status.cosigners = tuple(cosigners)
            if len(cosigners) < policy.quorum:
                status.problem = (f"witness-quorum: {len(cosigners)} of {policy.quorum} "
                                  "cosignatures")
                return status
            limit = asyncio.Semaphore(FETCH_CONCURRENCY)

            async def read(coord: tiles.TileCoord) -> tuple[tiles.TileCoord, bytes]:
                async with limit:
                    if own:
                        data = await self.storage.read_file(record.id, coord.path)
                        if data is None:
                            raise NodeError(f"our log lacks {coord.path}")
                        return coord, data
                    return coord, (await self.peers.get(f"{base}{prefix}/{coord.path}")).body

            needed = follower.needed(checkpoint.size)
            bundles = dict(await asyncio.gather(*(read(coord) for coord in needed)))
            if len(needed) > 8:  # thousands of entries to hash and parse: off the event loop
                await asyncio.to_thread(follower.advance, checkpoint, bundles, rules)
            else:
                follower.advance(checkpoint, bundles, rules)
        except FedPetitionError as e:
            status.problem = str(e)
        status.size = follower.size
        status.counted = _counted(follower)
        if follower.failure is not None:
            status.problem = follower.failure
        return status

    def summary(self, view: PetitionView) -> dict[str, Any]:
        """The federated count as this node last computed it, and each host's log (JSON)."""
        count = self.counts.get(view.record.id)
        hosts = [h.name for h in view.roster.hosts]
        if count is None or count.tally is None:
            # Only a sole host knows the whole count without following other logs.
            single = hosts == [view.node]
            return {"total": view.count if single else None, "updated": None,
                    "hosts": [{"name": h, "counted": view.count if single else None}
                              for h in hosts]}
        return {
            "total": count.tally.total,
            "duplicates": count.tally.duplicates,
            "updated": int(count.updated),
            "hosts": [{"name": s.host, "size": s.size, "counted": s.counted,
                       "cosigners": list(s.cosigners), "problem": s.problem}
                      for s in count.logs],
        }

    async def refresh_all(self) -> None:
        for record in await self.storage.petitions():
            if self._leader:
                self._reconcile(record)
            if len(self.roster(record).hosts) > 1 or record.id in self.counts:
                if self._leader:
                    await self._follow_hosts(record)  # retries the follows that failed
                await self.refresh_count(record.id)

    def _reconcile(self, record: PetitionRecord) -> None:
        """The sequencer catches up on publishing that another process asked for (a
        roster changed by a request it answered): a log whose latest checkpoint is not
        published, or was published under another roster, is published again."""
        current = self.node.sequencer.logs.get(record.id)
        if current is None:
            return
        stale = self._published_under.get(record.id) != record.roster
        if stale or note_size(current.published) < current.state.size:
            self._published_under[record.id] = record.roster
            self._schedule_publish(current)

    # -- "verify this count" ----------------------------------------------------
    def verification(self, view: PetitionView) -> Verified:
        """The latest verification of the petition from its published logs, and a new
        one started in the background if there is none or it is older than
        :data:`VERIFY_MAX_AGE` (one at a time per petition, and one thread for them all:
        each reads every hosting node's published files)."""
        record = view.record
        current = self._verified.get(record.id) or Verified()
        stale = current.finished is None or self.clock() - current.finished > VERIFY_MAX_AGE
        if stale and not current.running:
            current = Verified(report=current.report, finished=current.finished, running=True)
            loop = asyncio.get_running_loop()
            task = loop.create_task(self._verify(record.id, self.petition_url(record), loop))
            self._tasks.add(task)
            task.add_done_callback(self._done)
        self._verified[record.id] = current
        return current

    async def _verify(self, petition: int, url: str, loop: asyncio.AbstractEventLoop) -> None:
        """The verifier's own steps (spec §11), reading through this node's fetcher, so
        the same address rules hold as for everything the node fetches."""
        from fedpetition.verify.http import HttpSource

        def run() -> Report:
            with HttpSource(url, lambda scheme: _LoopGetter(scheme, self.peers, loop)) as source:
                return Verification(source).run()

        report: Report | None = None
        try:  # on a thread of its own: one verification at a time for the whole node,
            # and the default pool (DNS lookups of the fetcher among others) stays free
            report = await asyncio.get_running_loop().run_in_executor(self._verify_pool, run)
        except Exception:  # a bug of ours: the page says it could not verify
            log.exception("verifying petition %d failed", petition)
        self._verified[petition] = Verified(report=report, finished=self.clock())

    # -- running --------------------------------------------------------------
    async def start(self) -> None:
        """Background work of every process: following the federated counts."""
        self.node.sequencer.on_lead = self._lead
        self._spawn(self._refresh_loop(), "federated counts")

    async def _lead(self, leading: bool) -> None:
        """The work of the node's one sequencing process: deliveries, nullifiers,
        publishing our checkpoints, following the other hosts. Started when this
        process takes the sequencer lease (again, harmlessly, if starting failed
        half-way), stopped if it loses it."""
        if not leading:
            self._leader = False
            running = [*self._leading, *self._publishers.values()]
            self._leading.clear()
            self._publishers.clear()
            for task in running:
                task.cancel()
            return
        if not self._leader:
            self._leader = True
            self._start_leading(self.deliverer.run(), "deliveries")
            self._start_leading(self._nullifier_loop(), "nullifiers")
        hosting = []
        for record in await self.storage.petitions():
            view = await self.node.view_of(record)
            if view.hosting:
                hosting.append(view)
        for view in hosting:
            self._published_under[view.record.id] = view.record.roster  # nothing to reconcile
            self._schedule_publish(view.log)

        async def follow() -> None:  # peers may be slow or away: never hold the sequencer
            for view in hosting:
                await self._follow_hosts(view.record)

        self._start_leading(follow(), "follow hosts")

    def _start_leading(self, coro: Awaitable[Any], name: str) -> None:
        work: asyncio.Task[Any] = asyncio.ensure_future(coro)
        work.set_name(name)
        self._leading.add(work)
        work.add_done_callback(self._leading.discard)
        work.add_done_callback(self._done)

    async def _refresh_loop(self) -> None:
        while not self._closed:
            try:
                await self.refresh_all()
            except (FedPetitionError, OSError) as e:
                log.warning("refreshing federated counts failed: %s", e)
            except Exception:  # never let the loop die: the counts would freeze
                log.exception("refreshing federated counts failed")
            await asyncio.sleep(self.node.config.federation.refresh_seconds)


def _counted(follower: LogFollower) -> int:
    """Nullifiers that end signed in the followed log (without building their set)."""
    return len(follower.tally.states()) - follower.tally.withdrawn


def _json(activity: dict[str, Any]) -> bytes:
    return json.dumps(activity, separators=(",", ":"), ensure_ascii=False).encode()


def _peer_name(url: str) -> str:
    """The node name (host[:port], default port left out) a peer's URL is on."""
    scheme, host, port = acts.origin_of(url)
    host = f"[{host}]" if ":" in host else host
    return host if port == (443 if scheme == "https" else 80) else f"{host}:{port}"


def _check_documents(obj: acts.PetitionObject, origin_key: VerifierKey
                     ) -> tuple[list[PetitionVersion], HostRoster]:
    """The petition's versions and roster, checked against the origin's key (spec §3)."""
    versions = open_versions([SignedDocument.decode(v) for v in obj.versions],
                             obj.petition_id, origin_key)
    return versions, open_roster(SignedDocument.decode(obj.roster), obj.petition_id,
                                 origin_key)


@dataclass(frozen=True)
class Verified:
    """A petition's latest verification on this node (``report`` None: none finished, or
    it could not run)."""

    report: Report | None = None
    finished: float | None = None
    running: bool = False


class _LoopGetter:
    """The verifier's file reads (in a worker thread), done by the node's guarded
    fetcher on the node's event loop."""

    def __init__(self, scheme: str, peers: Peers, loop: asyncio.AbstractEventLoop) -> None:
        self.scheme = scheme
        self.peers = peers
        self.loop = loop

    def get(self, path: str, limit: int = 16 << 20) -> bytes:
        from fedpetition.verify.http import NotFound

        url = f"{self.scheme}://{path}"
        future = asyncio.run_coroutine_threadsafe(self.peers.get(url), self.loop)
        try:
            fetched = future.result(timeout=VERIFY_FETCH_SECONDS)
        except FetchError as e:
            if e.remote_status == 404:
                raise NotFound(f"GET {url}: HTTP 404") from None
            raise DecodeError(f"GET {url}: {e}") from None
        except TimeoutError:
            future.cancel()
            raise DecodeError(f"GET {url}: no answer in {VERIFY_FETCH_SECONDS:.0f} s") from None
        if len(fetched.body) > limit:
            raise DecodeError(f"GET {url}: larger than {limit} bytes")
        return fetched.body

    def close(self) -> None:
        """The fetcher's connections belong to the node."""


def attach(node: Node) -> Federation:
    """Give a node its federation (``build_node`` does this for every served node)."""
    fetcher = Fetcher(allow_loopback=node.config.security.dev_allow_loopback,
                      user_agent=USER_AGENT, timeout=node.config.federation.request_timeout_seconds,
                      max_bytes=16 << 20)
    return Federation(node, fetcher)


__all__ = ["FederatedCount", "Federation", "LogStatus", "ReplayError", "attach"]
