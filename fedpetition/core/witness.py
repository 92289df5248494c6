"""A tlog-witness (c2sp.org/tlog-witness) ``add-checkpoint`` state machine.

Pure: no I/O and no clock. The caller passes the request body and the time, and
gets back either a cosignature line with the new state to persist, or an error
carrying the HTTP status that tlog-witness §add-checkpoint prescribes:

====================================  ======  =============================================
Condition                             Status  Exception
====================================  ======  =============================================
body malformed (syntax, sizes, b64)   400     :class:`~fedpetition.core.errors.DecodeError`
old size > checkpoint size            400     :class:`OldSizeTooLargeError`
checkpoint origin not witnessed       404     :class:`UnknownLogError`
no valid signature by the log's key   403     :class:`LogSignatureError`
old size != recorded size             409     :class:`SizeConflictError` (body: size + LF,
                                              ``Content-Type: text/x.tlog.size``)
same size, different root hash        409     :class:`RootConflictError` (+ :class:`Evidence`)
consistency proof does not verify     422     :class:`InconsistentProofError` (+ Evidence)
====================================  ======  =============================================

All of these are :class:`~fedpetition.core.errors.RemoteProtocolError` and carry
``status``. Checks run in the order the spec lists them: signature (404, 403),
old size bound (400), old size match (409), then proof (422) or, when the sizes are
equal, root equality (409).

Persistence (tlog-witness §add-checkpoint, last paragraph): the witness MUST persist
the new checkpoint before responding, and checking the old size and persisting the
new state must be atomic, or two concurrent requests can roll the log back. So the
caller must, for a :class:`WitnessResult` ``r``:

1. store ``r.record`` for ``r.origin`` atomically *only if* the stored record is
   still ``r.previous`` (compare-and-swap, e.g. one SQL transaction), else retry
   the request against the fresh state;
2. then call :meth:`Witness.commit` (in-memory state) and only then send
   ``r.cosignature`` with status 200.

fedpetition specifics (spec/protocol.md §7): the log key is the host's node key
(Ed25519, type 0x01); the witness cosigns with type 0x04 (§7.4); a witness MUST NOT
witness a log whose host uses the witness's own key (§7.4); 0.1 checkpoints carry no
extension lines (§7.2), so by default such checkpoints are refused with 400.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from . import merkle
from .errors import DecodeError, LocalProtocolError, ProofError, RemoteProtocolError
from .notes import (
    MAX_TREE_SIZE,
    SIG_TYPE_ED25519,
    Checkpoint,
    Signer,
    VerifierKey,
    b64decode_canonical,
    cosign,
    open_checkpoint,
)

__all__ = [
    "CONFLICT_CONTENT_TYPE",
    "MAX_PROOF_LINES",
    "MAX_REQUEST_BYTES",
    "AddCheckpointRequest",
    "Evidence",
    "InconsistentProofError",
    "LogRecord",
    "LogSignatureError",
    "OldSizeTooLargeError",
    "RootConflictError",
    "SizeConflictError",
    "UnknownLogError",
    "Witness",
    "WitnessError",
    "WitnessResult",
    "decode_add_checkpoint",
    "encode_add_checkpoint",
]

# tlog-witness §add-checkpoint: "The client MUST NOT send more than 63 consistency
# proof lines."
MAX_PROOF_LINES = 63
# Not set by the spec. A note has at most 100 signature lines (notes.MAX_SIGNATURES,
# ~130 bytes each as cosignatures) and 63 proof lines take 2,835 bytes: 64 KiB is ample.
MAX_REQUEST_BYTES = 64 * 1024
# tlog-witness §add-checkpoint: the 409 response to an old size mismatch.
CONFLICT_CONTENT_TYPE = "text/x.tlog.size"

_OLD_PREFIX = "old "
# "ASCII decimal with no leading zeroes (unless the size is zero ...)"; 19 digits bound.
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")


# --------------------------------------------------------------------------- errors


class WitnessError(RemoteProtocolError):
    """A request the witness refuses (tlog-witness §add-checkpoint); ``status`` is HTTP."""

    def __init__(self, message: str, *, origin: str | None = None) -> None:
        super().__init__(message)
        self.origin = origin


class OldSizeTooLargeError(WitnessError):
    """The old size exceeds the checkpoint size: "400 Bad Request"."""

    status = 400


class UnknownLogError(WitnessError):
    """The checkpoint origin is not a log this witness witnesses: "404 Not Found"."""

    status = 404


class LogSignatureError(WitnessError):
    """No signature verifies against the log's trusted key: "403 Forbidden"."""

    status = 403


class SizeConflictError(WitnessError):
    """The old size is not the size the witness last cosigned: "409 Conflict".

    The response body MUST be :meth:`body` (the witness's size in decimal and a
    newline) with ``Content-Type`` :data:`CONFLICT_CONTENT_TYPE`.
    """

    status = 409
    content_type = CONFLICT_CONTENT_TYPE

    def __init__(self, message: str, *, origin: str, current_size: int) -> None:
        super().__init__(message, origin=origin)
        self.current_size = current_size

    def body(self) -> bytes:
        return f"{self.current_size}\n".encode("ascii")


class RootConflictError(WitnessError):
    """Same size as recorded, different root hash: "409 Conflict".

    ``evidence`` holds both signed notes when the witness has the recorded one: two
    log-signed checkpoints of one size with different roots prove a split view.
    ``current_size`` is the witness's size (equal to the request's old size).
    """

    status = 409

    def __init__(
        self, message: str, *, origin: str, current_size: int, evidence: Evidence | None
    ) -> None:
        super().__init__(message, origin=origin)
        self.current_size = current_size
        self.evidence = evidence


class InconsistentProofError(WitnessError):
    """The consistency proof does not verify: "422 Unprocessable Entity".

    The checkpoint's log signature did verify. ``evidence`` (when the witness has a
    recorded note) keeps both notes and the proof, which the spec allows a witness to
    log "as it might be proof of log misbehavior"; see :class:`Evidence`.
    """

    status = 422

    def __init__(self, message: str, *, origin: str, evidence: Evidence | None) -> None:
        super().__init__(message, origin=origin)
        self.evidence = evidence


# --------------------------------------------------------------------------- request


def _b64_hash(s: str, what: str) -> bytes:
    """Canonical standard base64 (RFC 4648 §4) of one 32-byte hash."""
    raw = b64decode_canonical(s, what)
    if len(raw) != merkle.HASH_SIZE:
        raise DecodeError(f"{what}: {len(raw)} bytes, want {merkle.HASH_SIZE}")
    return raw


@dataclass(frozen=True, slots=True)
class AddCheckpointRequest:
    """An ``add-checkpoint`` request body (tlog-witness §add-checkpoint)."""

    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: str  # the signed checkpoint note

    def encode(self) -> bytes:
        return encode_add_checkpoint(self.old_size, self.proof, self.checkpoint)


def encode_add_checkpoint(old_size: int, proof: Sequence[bytes], checkpoint: str | bytes) -> bytes:
    """``old <size>\\n``, one base64 hash per line, an empty line, then the note."""
    if isinstance(old_size, bool) or not isinstance(old_size, int):
        raise LocalProtocolError(f"old size {old_size!r} is not an integer")
    if not 0 <= old_size <= MAX_TREE_SIZE:
        raise LocalProtocolError(f"old size {old_size} is not in [0, 2^63-1]")
    if len(proof) > MAX_PROOF_LINES:
        raise LocalProtocolError(f"{len(proof)} proof hashes, at most {MAX_PROOF_LINES} allowed")
    lines = [f"{_OLD_PREFIX}{old_size}\n"]
    for i, h in enumerate(proof):
        if not isinstance(h, bytes) or len(h) != merkle.HASH_SIZE:
            raise LocalProtocolError(f"proof hash {i} is not {merkle.HASH_SIZE} bytes")
        lines.append(base64.b64encode(h).decode("ascii") + "\n")
    lines.append("\n")
    note = checkpoint if isinstance(checkpoint, bytes) else checkpoint.encode("utf-8")
    body = "".join(lines).encode("ascii") + note
    if len(body) > MAX_REQUEST_BYTES:
        raise LocalProtocolError(f"request body is {len(body)} bytes, over {MAX_REQUEST_BYTES}")
    return body


def decode_add_checkpoint(body: bytes) -> AddCheckpointRequest:
    """Parse an ``add-checkpoint`` body strictly; raise DecodeError (HTTP 400).

    Checks the framing only; the note itself is checked by :meth:`Witness.add_checkpoint`
    (it must at least be non-empty here).
    """
    if not isinstance(body, bytes):
        raise DecodeError("request body is not bytes")
    if len(body) > MAX_REQUEST_BYTES:
        raise DecodeError(f"request body is {len(body)} bytes, over {MAX_REQUEST_BYTES}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DecodeError("request body is not valid UTF-8") from e
    # "Each line MUST terminate in a newline character (U+000A)."
    end = text.find("\n")
    if end < 0:
        raise DecodeError("request body has no old size line")
    old_line = text[:end]
    if not old_line.startswith(_OLD_PREFIX):
        raise DecodeError(f"first line {old_line[:40]!r} is not 'old <size>'")
    digits = old_line[len(_OLD_PREFIX) :]
    if _DECIMAL.fullmatch(digits) is None:
        raise DecodeError(f"old size {digits[:40]!r} is not a canonical decimal")
    old_size = int(digits)
    if old_size > MAX_TREE_SIZE:
        raise DecodeError(f"old size {old_size} >= 2^63")
    pos = end + 1
    proof: list[bytes] = []
    while True:
        end = text.find("\n", pos)
        if end < 0:
            raise DecodeError("request body has no empty line before the checkpoint")
        line = text[pos:end]
        pos = end + 1
        if not line:
            break
        if len(proof) == MAX_PROOF_LINES:
            raise DecodeError(f"more than {MAX_PROOF_LINES} consistency proof lines")
        proof.append(_b64_hash(line, f"consistency proof line {len(proof) + 1}"))
    note = text[pos:]
    if not note:
        raise DecodeError("request body has no checkpoint")
    return AddCheckpointRequest(old_size, tuple(proof), note)


# --------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class LogRecord:
    """What a witness persists per log: the latest checkpoint it cosigned.

    ``note`` is that checkpoint as the log signed it (the request's note, verbatim),
    kept as the recorded half of any future :class:`Evidence`.
    """

    size: int
    root_hash: bytes
    note: str


@dataclass(frozen=True, slots=True)
class Evidence:
    """Two notes signed by one log's key that cannot both be honest.

    ``kind == "fork"``: both checkpoints have the same size and different roots; this
    alone proves a split view to anyone holding the log's key (check both signatures).
    ``kind == "inconsistent"``: ``proof`` (from ``recorded`` size to the offending size,
    as the submitter sent it) did not verify. That is misbehaviour only if *no* valid
    proof exists; anyone can recheck it by fetching a proof from the log's tiles, and
    a failing proof may also come from a broken client, so treat it as a lead.
    """

    kind: Literal["fork", "inconsistent"]
    origin: str
    recorded_note: str
    offending_note: str
    proof: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class WitnessResult:
    """A cosigned checkpoint: persist ``record`` (CAS on ``previous``), then reply.

    ``cosignature`` is the 200 response body: one signature line, ending in a newline.
    """

    origin: str
    checkpoint: Checkpoint
    cosignature: str
    record: LogRecord
    previous: LogRecord | None


def _split_note_text(note: str) -> str:
    """The note text: everything up to the newline before the last blank line."""
    split = note.rfind("\n\n")
    if split < 0:
        raise DecodeError("checkpoint note has no blank line before its signatures")
    return note[: split + 1]


class Witness:
    """Witnesses a set of logs; one ``add-checkpoint`` at a time against its state.

    ``logs`` maps each witnessed origin to the log's type 0x01 key; ``state`` holds
    the persisted :class:`LogRecord` per origin (absent: never cosigned, size 0).
    :meth:`add_checkpoint` does not change the state; :meth:`commit` does, after the
    caller has persisted the result.
    """

    def __init__(
        self,
        signer: Signer,
        logs: Mapping[str, VerifierKey],
        state: Mapping[str, LogRecord] | None = None,
        *,
        allow_extensions: bool = False,
    ) -> None:
        self._signer = signer
        self._allow_extensions = allow_extensions
        for origin, key in logs.items():
            if not isinstance(key, VerifierKey) or key.sig_type != SIG_TYPE_ED25519:
                raise LocalProtocolError(f"log key for {origin!r} must be an Ed25519 0x01 vkey")
            # spec/protocol.md §7.4: never witness a host that uses the witness's key.
            if key.public_key == signer.public_key:
                raise LocalProtocolError(f"log {origin!r} uses the witness's own key")
        self._logs = dict(logs)
        self._state: dict[str, LogRecord] = {}
        for origin, record in (state or {}).items():
            if origin not in self._logs:
                raise LocalProtocolError(f"state for {origin!r}, which is not witnessed")
            try:
                cp = Checkpoint.parse_body(_split_note_text(record.note))
            except DecodeError as e:
                raise LocalProtocolError(f"stored note for {origin!r} is invalid: {e}") from e
            if (cp.origin, cp.size, cp.root_hash) != (origin, record.size, record.root_hash):
                raise LocalProtocolError(f"stored note for {origin!r} does not match its record")
            self._state[origin] = record

    @property
    def signer(self) -> Signer:
        return self._signer

    def record(self, origin: str) -> LogRecord | None:
        """The latest cosigned checkpoint of ``origin``, or None."""
        return self._state.get(origin)

    def state(self) -> dict[str, LogRecord]:
        return dict(self._state)

    def commit(self, result: WitnessResult) -> None:
        """Adopt ``result.record`` after it was persisted; refuses a stale result."""
        if self._state.get(result.origin) != result.previous:
            raise LocalProtocolError(
                f"state of {result.origin!r} changed since the request was checked"
            )
        self._state[result.origin] = result.record

    def add_checkpoint(self, request_body: bytes, now: int) -> WitnessResult:
        """Check one ``add-checkpoint`` body (tlog-witness §add-checkpoint) and cosign it.

        ``now`` is the POSIX time in seconds for the cosignature. Raises DecodeError
        (400) or a :class:`WitnessError` carrying its status; never changes state.
        """
        request = decode_add_checkpoint(request_body)
        note = request.checkpoint
        # Origin first: an unknown origin is 404 before any signature check.
        checkpoint = Checkpoint.parse_body(_split_note_text(note))
        origin = checkpoint.origin
        log_key = self._logs.get(origin)
        if log_key is None:
            raise UnknownLogError(f"log {origin!r} is not witnessed here", origin=origin)
        try:
            open_checkpoint(note, log_key)
        except DecodeError:
            raise
        except RemoteProtocolError as e:  # SignatureError: none verified, or a bad one
            raise LogSignatureError(
                f"checkpoint of {origin!r} is not signed by its log key: {e}", origin=origin
            ) from e
        if checkpoint.extensions and not self._allow_extensions:
            raise DecodeError(f"checkpoint of {origin!r} has extension lines (spec §7.2)")
        # "The old size MUST be equal to or lower than the checkpoint size."
        if request.old_size > checkpoint.size:
            raise OldSizeTooLargeError(
                f"old size {request.old_size} exceeds checkpoint size {checkpoint.size}",
                origin=origin,
            )
        previous = self._state.get(origin)
        size = previous.size if previous is not None else 0
        root = previous.root_hash if previous is not None else merkle.EMPTY_ROOT
        if request.old_size != size:
            raise SizeConflictError(
                f"old size {request.old_size} but the latest cosigned size of {origin!r} is {size}",
                origin=origin,
                current_size=size,
            )
        if request.old_size == checkpoint.size:
            if request.proof:
                raise InconsistentProofError(
                    f"consistency proof between equal sizes {size} must be empty",
                    origin=origin,
                    evidence=None,
                )
            if checkpoint.root_hash != root:
                evidence = None
                if previous is not None:
                    evidence = Evidence("fork", origin, previous.note, note)
                raise RootConflictError(
                    f"checkpoint of {origin!r} at size {size} has root "
                    f"{checkpoint.root_hash.hex()}, but {root.hex()} was cosigned",
                    origin=origin,
                    current_size=size,
                    evidence=evidence,
                )
        else:
            try:
                merkle.verify_consistency(
                    size, checkpoint.size, request.proof, root, checkpoint.root_hash
                )
            except ProofError as e:
                evidence = None
                if previous is not None:
                    evidence = Evidence("inconsistent", origin, previous.note, note, request.proof)
                raise InconsistentProofError(
                    f"checkpoint of {origin!r}: {e}", origin=origin, evidence=evidence
                ) from e
        body = checkpoint.body()
        cosignature = cosign(body, self._signer, now)
        record = LogRecord(checkpoint.size, checkpoint.root_hash, note)
        return WitnessResult(origin, checkpoint, cosignature, record, previous)
