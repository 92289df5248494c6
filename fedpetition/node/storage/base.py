"""The storage interface: every operation a node needs, each one transaction.

Methods speak in protocol terms (petitions, signatures, queued entries, tiles,
checkpoints). Personal data only ever crosses this interface sealed (encrypted
by :class:`fedpetition.node.keys.DataKey`), so a storage backend never sees a
name or an email in clear.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

from fedpetition.core.witness import Evidence
from fedpetition.core.witness import LogRecord as WitnessRecord
from fedpetition.federation.delivery import Delivery, PeerState

# Signature states (see docs: a signature moves pending -> confirmed -> counted
# -> withdrawing -> withdrawn; withdrawn may start again as pending).
PENDING = "pending"
CONFIRMED = "confirmed"  # durable, queued for the log
COUNTED = "counted"  # its sign entry is in the log
WITHDRAWING = "withdrawing"  # withdraw entry queued
WITHDRAWN = "withdrawn"  # withdraw entry in the log

SIGN, WITHDRAW = "sign", "withdraw"


@dataclass(frozen=True)
class Organiser:
    id: int
    name: str
    password_hash: bytes


@dataclass(frozen=True)
class PetitionRecord:
    id: int
    slug: str
    petition_id: str
    organiser_id: int | None
    status: str  # open or closed
    created: int
    closed_at: int | None
    versions: tuple[bytes, ...]  # signed version documents, version 1 first
    roster: bytes  # the latest signed host roster
    # For a petition started on another node and hosted here: the origin's
    # verifier key (pinned when this node joined) and the petition's URL there.
    origin_key: str | None = None
    origin_url: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def is_local(self) -> bool:
        """Started on this node (this node is its origin)."""
        return self.origin_key is None


# Answers to a node asking to host a petition.
REQUEST_PENDING, REQUEST_ACCEPTED, REQUEST_REJECTED = "pending", "accepted", "rejected"


@dataclass(frozen=True)
class HostRequest:
    """A node's offer to host one of our petitions (an ``Announce``), and our answer."""

    petition: int
    node: str  # its node name
    vkey: str  # its verifier key, as its actor document published it
    inbox: str
    activity: str  # the Announce's id
    status: str
    at: int


@dataclass(frozen=True)
class Follower:
    """An actor that receives a petition's updates."""

    petition: int
    actor: str
    inbox: str
    follow_id: str


@dataclass(frozen=True)
class SignatureRecord:
    id: int
    petition: int
    email_index: bytes
    status: str
    sealed: bytes | None  # name, email, salt and consents, sealed; None once erased
    region: str | None
    created: int
    confirmed: int | None
    expires: int | None  # for pending signatures
    nullifier: bytes | None
    commitment: bytes | None
    version: int | None
    log_index: int | None


@dataclass(frozen=True)
class QueuedEntry:
    """A confirmed signature or a withdrawal waiting for the sequencer."""

    id: int
    petition: int
    signature: int | None
    kind: str  # sign or withdraw
    nullifier: bytes
    commitment: bytes | None
    version: int  # petition version number the entry binds to
    region: str | None
    at: int  # when it was confirmed or requested (Unix seconds)


@dataclass(frozen=True)
class LogRecord:
    petition: int
    size: int
    state: bytes  # the LogAppender's right edge, encoded
    checkpoint: bytes  # the latest signed checkpoint note
    last_time: int  # time of the last entry (entries never go back in time)


class Storage(abc.ABC):
    """What a node stores. Implementations must make each method atomic."""

    # -- lifecycle ----------------------------------------------------------
    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and apply pending schema migrations."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def schema_version(self) -> int: ...

    # -- organisers ---------------------------------------------------------
    @abc.abstractmethod
    async def create_organiser(
        self, name: str, password_hash: bytes, token_hash: bytes, now: int
    ) -> int: ...

    @abc.abstractmethod
    async def organiser_by_name(self, name: str) -> Organiser | None: ...

    @abc.abstractmethod
    async def organiser_by_token(self, token_hash: bytes) -> Organiser | None: ...

    @abc.abstractmethod
    async def organiser_count(self) -> int: ...

    @abc.abstractmethod
    async def set_organiser_token(self, name: str, token_hash: bytes) -> bool: ...

    @abc.abstractmethod
    async def create_session(self, token_hash: bytes, organiser: int, expires: int) -> None: ...

    @abc.abstractmethod
    async def organiser_by_session(self, token_hash: bytes, now: int) -> Organiser | None: ...

    @abc.abstractmethod
    async def delete_session(self, token_hash: bytes) -> None: ...

    # -- petitions ----------------------------------------------------------
    @abc.abstractmethod
    async def create_petition(
        self,
        slug: str,
        petition_id: str,
        organiser: int | None,
        version: bytes,
        roster: bytes,
        now: int,
    ) -> int:
        """Store a new petition with its signed version 1 and roster; an empty log."""

    @abc.abstractmethod
    async def add_version(self, petition: int, number: int, document: bytes, now: int) -> None: ...

    @abc.abstractmethod
    async def close_petition(self, petition: int, now: int) -> bool: ...

    @abc.abstractmethod
    async def petitions(self) -> list[PetitionRecord]: ...

    @abc.abstractmethod
    async def petition_by_slug(self, slug: str) -> PetitionRecord | None: ...

    @abc.abstractmethod
    async def petition_by_id(self, petition: int) -> PetitionRecord | None: ...

    # -- signatures ---------------------------------------------------------
    @abc.abstractmethod
    async def signature_by_index(
        self, petition: int, email_index: bytes
    ) -> SignatureRecord | None: ...

    @abc.abstractmethod
    async def signature_by_token(self, token_hash: bytes) -> SignatureRecord | None: ...

    @abc.abstractmethod
    async def signatures_by_indexes(
        self, pairs: Sequence[tuple[int, bytes]]
    ) -> list[SignatureRecord]:
        """Every signature whose (petition, email index) is in ``pairs``."""

    @abc.abstractmethod
    async def create_pending(
        self,
        petition: int,
        email_index: bytes,
        sealed: bytes,
        region: str | None,
        token_hash: bytes,
        now: int,
        expires: int,
    ) -> int | None:
        """A new pending signature, or None if one exists for that email index.

        A withdrawn or expired-pending row for the same index is replaced.
        """

    @abc.abstractmethod
    async def rotate_token(
        self, signature: int, token_hash: bytes, now: int, expires: int | None
    ) -> bool:
        """Give a signature a new link token (the old link stops working).

        For a pending signature, ``expires`` restarts its confirmation window.
        """

    @abc.abstractmethod
    async def confirm(
        self,
        signature: int,
        token_hash: bytes,
        now: int,
        version: int,
        nullifier: bytes | None,
        commitment: bytes,
    ) -> bool:
        """Pending -> confirmed, in one durable transaction.

        With its nullifier the signature is queued for the log at once; without
        (a hosted petition's, spec §4.4) it waits for :meth:`set_nullifiers`.
        """

    @abc.abstractmethod
    async def awaiting_nullifiers(self, limit: int) -> list[SignatureRecord]:
        """Confirmed signatures still without a nullifier, oldest first."""

    @abc.abstractmethod
    async def set_nullifiers(self, items: Sequence[tuple[int, bytes]]) -> int:
        """Give each ``(signature, nullifier)`` still awaiting one its nullifier and queue
        its sign entry; return how many were set."""

    @abc.abstractmethod
    async def request_withdrawal(
        self, signature: int, token_hash: bytes, now: int, version: int
    ) -> bool:
        """Counted or confirmed -> withdrawing, with a withdraw entry queued."""

    @abc.abstractmethod
    async def erase_signatures(self, ids: Sequence[int]) -> int:
        """Delete the personal data (the whole row) of these signatures."""

    @abc.abstractmethod
    async def delete_expired_pending(self, now: int) -> int: ...

    @abc.abstractmethod
    async def purge_closed(self, closed_before: int) -> int:
        """Delete personal data of signatures on petitions closed before a time."""

    # -- the log ------------------------------------------------------------
    @abc.abstractmethod
    async def log(self, petition: int) -> LogRecord | None: ...

    @abc.abstractmethod
    async def queued(self, limit: int) -> list[QueuedEntry]:
        """Queued entries in queue order (across petitions)."""

    @abc.abstractmethod
    async def commit_batch(
        self,
        petition: int,
        queue_ids: Sequence[int],
        log: LogRecord,
        files: Sequence[tuple[str, bytes]],
        sequenced: Sequence[tuple[int, str, int]],
        dropped: Sequence[int],
    ) -> None:
        """Make one sequenced batch durable: tiles, checkpoint, states, queue.

        ``sequenced`` holds ``(signature id, kind, log index)``; ``dropped`` the
        queue ids refused by the log rules (their signatures are deleted).
        """

    @abc.abstractmethod
    async def read_file(self, petition: int, path: str) -> bytes | None:
        """A tile or entry bundle of a petition's log, by its tlog-tiles path."""

    @abc.abstractmethod
    async def checkpoints(self, petition: int) -> list[tuple[int, bytes]]:
        """Every checkpoint the log published, as ``(size, note)``, oldest first."""

    @abc.abstractmethod
    async def published(self, petition: int) -> bytes | None:
        """The latest checkpoint meeting the witness policy, cosignatures included."""

    @abc.abstractmethod
    async def set_published(self, petition: int, note: bytes, size: int) -> bool:
        """Publish ``note`` (of ``size``) unless a larger checkpoint is published already."""

    # -- federation: hosting ------------------------------------------------
    @abc.abstractmethod
    async def create_hosted_petition(
        self,
        slug: str,
        petition_id: str,
        versions: Sequence[bytes],
        roster: bytes,
        origin_key: str,
        origin_url: str,
        now: int,
    ) -> int:
        """Store a petition started elsewhere, with the origin's signed documents."""

    @abc.abstractmethod
    async def petition_by_petition_id(self, petition_id: str) -> PetitionRecord | None: ...

    @abc.abstractmethod
    async def set_roster(self, petition: int, roster: bytes) -> None: ...

    @abc.abstractmethod
    async def add_evaluations(self, petition: int, node: str, count: int) -> None:
        """Count ``count`` more VOPRF evaluations served to ``node`` (durably)."""

    @abc.abstractmethod
    async def evaluations(self, petition: int) -> dict[str, int]:
        """The VOPRF evaluations served per node for a petition."""

    @abc.abstractmethod
    async def put_host_request(self, request: HostRequest) -> None:
        """Insert or replace the request of ``request.node`` for the petition."""

    @abc.abstractmethod
    async def host_requests(self, petition: int) -> list[HostRequest]: ...

    @abc.abstractmethod
    async def add_follower(self, follower: Follower) -> None: ...

    @abc.abstractmethod
    async def remove_follower(self, petition: int, actor: str) -> bool: ...

    @abc.abstractmethod
    async def followers(self, petition: int) -> list[Follower]: ...

    @abc.abstractmethod
    async def remember_activity(self, activity_id: str, expires: int, now: int) -> bool:
        """Record an activity id; False if it was seen before (a replay)."""

    @abc.abstractmethod
    async def forget_activity(self, activity_id: str) -> None:
        """Undo :meth:`remember_activity` for an activity that could not be applied."""

    # -- federation: delivery queue (fedpetition.federation.delivery) -------
    @abc.abstractmethod
    async def enqueue_deliveries(
        self, items: Sequence[tuple[str, str, bytes]], now: int
    ) -> list[int]: ...

    @abc.abstractmethod
    async def due_deliveries(self, now: int, limit: int) -> list[Delivery]: ...

    @abc.abstractmethod
    async def delivered(self, delivery_id: int) -> None: ...

    @abc.abstractmethod
    async def reschedule_delivery(
        self, delivery_id: int, attempts: int, next_at: int, error: str
    ) -> None: ...

    @abc.abstractmethod
    async def drop_delivery(self, delivery_id: int, error: str) -> None: ...

    @abc.abstractmethod
    async def peer_state(self, peer: str) -> PeerState: ...

    @abc.abstractmethod
    async def set_peer_state(self, state: PeerState) -> None: ...

    @abc.abstractmethod
    async def wake_peer(self, peer: str, now: int) -> None: ...

    @abc.abstractmethod
    async def pending_deliveries(self) -> int: ...

    # -- federation: the witness --------------------------------------------
    @abc.abstractmethod
    async def witnessed(self, origins: Sequence[str]) -> dict[str, WitnessRecord]:
        """The latest checkpoint cosigned for each of ``origins`` that has one."""

    @abc.abstractmethod
    async def update_witnessed(
        self, origin: str, previous: WitnessRecord | None, record: WitnessRecord
    ) -> bool:
        """Compare-and-swap: store ``record`` only if the stored one is ``previous``."""

    @abc.abstractmethod
    async def add_evidence(self, evidence: Evidence, at: int) -> None: ...

    @abc.abstractmethod
    async def evidence(self) -> list[tuple[int, Evidence]]:
        """Every split view recorded, as ``(time, evidence)``, oldest first."""
