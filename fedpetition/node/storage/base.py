"""The storage interface: every operation a node needs, each one transaction.

Methods speak in protocol terms (petitions, signatures, queued entries, tiles,
checkpoints). Personal data only ever crosses this interface sealed (encrypted
by :class:`fedpetition.node.keys.DataKey`), so a storage backend never sees a
name or an email in clear.
"""

from __future__ import annotations

import abc
import importlib.resources
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from fedpetition.core.witness import Evidence
from fedpetition.core.witness import LogRecord as WitnessRecord
from fedpetition.federation.delivery import Delivery, PeerState
from fedpetition.node.errors import ConfigError, NodeError


class StaleLogError(NodeError):
    """A batch was built on a log that has moved on: another sequencer committed first.

    Nothing of the batch was stored; the sequencer reloads the log and tries again.
    """


@dataclass(frozen=True)
class Table:
    """A table as ``fedpetition export`` writes it: its columns, the first ``key`` of
    which are its primary key (rows are exported in key order, text compared by
    bytes, so both backends write the same rows in the same order)."""

    name: str
    columns: tuple[str, ...]
    key: int = 1

    @property
    def key_columns(self) -> tuple[str, ...]:
        return self.columns[:self.key]


# Every table that holds a node's state, in an order that respects foreign keys.
# Both backends have these tables with these columns; an export names them, so a
# node moves between backends whatever each backend's schema version number is.
EXPORT_TABLES: tuple[Table, ...] = (
    Table("organisers", ("id", "name", "password_hash", "token_hash", "created")),
    Table("sessions", ("token_hash", "organiser", "expires")),
    Table("petitions", ("id", "slug", "petition_id", "organiser", "status", "created",
                        "closed_at", "roster", "origin_key", "origin_url")),
    Table("petition_versions", ("petition", "number", "document", "created"), 2),
    Table("signatures", ("id", "petition", "email_index", "token_hash", "status", "sealed",
                         "region", "created", "expires", "confirmed", "version", "nullifier",
                         "commitment", "log_index")),
    Table("queue", ("id", "petition", "signature", "kind", "nullifier", "commitment",
                    "version", "region", "at")),
    Table("logs", ("petition", "size", "state", "checkpoint", "last_time", "published")),
    Table("log_files", ("petition", "path", "data"), 2),
    Table("checkpoints", ("petition", "size", "note"), 2),
    Table("host_requests", ("petition", "node", "vkey", "inbox", "activity", "status", "at"),
          2),
    Table("followers", ("petition", "actor", "inbox", "follow_id"), 2),
    Table("deliveries", ("id", "peer", "url", "body", "attempts", "next_at", "created",
                         "last_error")),
    Table("peers", ("name", "failures", "unavailable_since", "next_probe", "probe_interval")),
    Table("seen_activities", ("id", "expires")),
    Table("witnessed", ("origin", "size", "root", "note")),
    Table("witness_evidence", ("id", "origin", "kind", "recorded", "offending", "proof",
                               "at")),
    Table("evaluations", ("petition", "node", "count"), 2),
)


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
    async def open(self, *, migrate: bool = True, check: bool = True) -> None:
        """Connect; apply pending schema migrations, or (``check``) refuse to run without
        them. ``fedpetition migrate`` opens with neither, then calls :meth:`migrate`."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def schema_version(self) -> int: ...

    @abc.abstractmethod
    async def migrate(self) -> list[int]:
        """Apply the pending schema migrations; return the versions applied."""

    @abc.abstractmethod
    async def pending_migrations(self) -> list[int]:
        """The versions this fedpetition knows that the database lacks."""

    # -- several processes, one sequencer -----------------------------------
    shared = False  # whether several processes may serve one node from this storage

    @abc.abstractmethod
    async def lead(self) -> bool:
        """Take or keep the node's sequencer lease; True while this process holds it.

        At most one process holds it at a time; it is freed when its holder's
        connection or process ends, so another takes over within a period.
        """

    @abc.abstractmethod
    async def count_event(self, key: str, window: int, now: int) -> int:
        """Count one event for ``key`` in the fixed window of ``window`` seconds holding
        ``now``; return the count so far (rate limits, shared by the node's processes)."""

    # -- export and import (fedpetition export / import) ---------------------
    @abc.abstractmethod
    def export_rows(self, table: Table, chunk: int) -> AsyncIterator[list[tuple[Any, ...]]]:
        """A table's rows (one of ``EXPORT_TABLES``), in key order, ``chunk`` at a time."""

    @abc.abstractmethod
    async def import_rows(self, table: Table, rows: Sequence[Sequence[Any]]) -> None:
        """Insert exported rows as they are (ids included) into an empty node."""

    @abc.abstractmethod
    async def finish_import(self) -> None:
        """After an import: move id generators past the imported ids."""

    @abc.abstractmethod
    async def is_empty(self) -> bool:
        """No petition, organiser or signature stored (a node may be imported here)."""

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
    async def signatures_of(self, petition: int, status: str, after: int, limit: int
                            ) -> list[SignatureRecord]:
        """A petition's signatures in ``status`` with their personal data, ids above
        ``after``, in id order, ``limit`` at most (the organiser's consented list)."""

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
        previous_size: int | None,
        queue_ids: Sequence[int],
        log: LogRecord,
        files: Sequence[tuple[str, bytes]],
        sequenced: Sequence[tuple[int, str, int]],
        dropped: Sequence[int],
    ) -> None:
        """Make one sequenced batch durable: tiles, checkpoint, states, queue.

        Compare-and-swap: the batch extends the log of ``previous_size`` entries
        (None: the log does not exist yet). If the stored log has another size,
        nothing is stored and :class:`StaleLogError` is raised, so two sequencers
        can never both commit a batch on the same log state (a fork).
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


# -- helpers both backends use ---------------------------------------------------

def migrations(backend: str) -> list[tuple[int, str]]:
    """The numbered migrations of a backend shipped with the package, in order."""
    folder = importlib.resources.files(__package__).joinpath(f"migrations/{backend}")
    found = []
    for item in folder.iterdir():
        name = item.name
        if name.endswith(".sql"):
            found.append((int(name.split("_", 1)[0]), item.read_text(encoding="utf-8")))
    return sorted(found)


def pending_after(backend: str, current: int) -> list[int]:
    """The backend's migrations a database at schema ``current`` lacks; refuses a database
    newer than this code."""
    known = [number for number, _ in migrations(backend)]
    if current > (known[-1] if known else 0):
        raise ConfigError(f"database schema {current} is newer than this fedpetition knows: "
                          "upgrade fedpetition")
    return [number for number in known if number > current]


def lacking(pending: list[int]) -> ConfigError:
    """Why a node does not start on a database with migrations ``pending``."""
    return ConfigError(f"database schema {pending[0] - 1} lacks migrations "
                       f"{pending[0]}-{pending[-1]}: run `fedpetition migrate`")


def evidence_row(row: Sequence[Any]) -> tuple[int, Evidence]:
    """A stored ``(at, origin, kind, recorded, offending, proof)`` row of
    ``witness_evidence`` (the proof's hashes concatenated) as evidence."""
    at, origin, kind, recorded, offending, proof = row
    return int(at), Evidence(kind, origin, recorded, offending,
                             tuple(bytes(proof[i:i + 32]) for i in range(0, len(proof), 32)))


def note_size(note: bytes) -> int:
    """The tree size on a checkpoint note's second line (stored notes are ours)."""
    return int(note.split(b"\n", 2)[1])


def check_table(table: Table) -> None:
    """Only the tables and columns of ``EXPORT_TABLES`` reach SQL text."""
    if table not in EXPORT_TABLES:
        raise NodeError(f"unknown table: {table.name}")


def first(records: list[PetitionRecord]) -> PetitionRecord | None:
    return records[0] if records else None
