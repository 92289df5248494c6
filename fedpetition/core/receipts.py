"""Receipts (spec §8): what a signer keeps to prove their signature is counted.

A receipt holds the signer's entry and its index, an inclusion proof to a
checkpoint signed by the log and cosigned by witnesses, the keys to check those
signatures with, and the opening of the entry's commitment (salt and private
record). It is checked offline; checking it against a node's current checkpoint
(consistency) is the online half, done by adapters with :func:`check_consistency`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import encoding, merkle, names
from .documents import HostRoster
from .entries import PrivateRecord, SignEntry, commitment, parse_entry
from .errors import DecodeError, FedPetitionError, VerificationError
from .log import open_log_checkpoint
from .notes import Checkpoint, VerifierKey

MAX_PROOF = 64

STEP_FORMAT = "receipt-format"
STEP_CHECKPOINT = "receipt-checkpoint"
STEP_WITNESSES = "receipt-witnesses"
STEP_INCLUSION = "receipt-inclusion"
STEP_COMMITMENT = "receipt-commitment"
RECEIPT_STEPS = (STEP_FORMAT, STEP_CHECKPOINT, STEP_WITNESSES, STEP_INCLUSION, STEP_COMMITMENT)
# Beyond the receipt itself (§8.2): its keys and witness policy are the petition's.
STEP_ROSTER = "receipt-roster"


@dataclass(frozen=True)
class Receipt:
    """A signer's proof of inclusion (spec §8)."""

    petition: str
    log: str
    log_key: VerifierKey
    quorum: int
    witnesses: tuple[VerifierKey, ...]
    checkpoint: str
    index: int
    entry: bytes
    proof: tuple[bytes, ...]
    salt: bytes
    record: bytes

    def encode(self) -> bytes:
        value: dict[str, Any] = {
            "type": "receipt",
            "petition": self.petition,
            "log": self.log,
            "log_key": str(self.log_key),
            "quorum": self.quorum,
            "witnesses": [str(w) for w in self.witnesses],
            "checkpoint": self.checkpoint,
            "index": self.index,
            "entry": self.entry,
            "proof": list(self.proof),
            "salt": self.salt,
            "record": self.record,
        }
        return encoding.encode(value)

    @classmethod
    def decode(cls, data: bytes) -> Receipt:
        doc = encoding.decode_map(data, "receipt")
        fields = {"type", "petition", "log", "log_key", "quorum", "witnesses", "checkpoint",
                  "index", "entry", "proof", "salt", "record"}
        if set(doc) != fields or doc["type"] != "receipt":
            raise DecodeError(f"a receipt has exactly the fields {sorted(fields)}")
        types = {"petition": str, "log": str, "log_key": str, "quorum": int, "witnesses": list,
                 "checkpoint": str, "index": int, "entry": bytes, "proof": list, "salt": bytes,
                 "record": bytes}
        for key, kind in types.items():
            if not isinstance(doc[key], kind) or isinstance(doc[key], bool):
                raise DecodeError(f"receipt field {key} has the wrong type")
        proof = doc["proof"]
        if len(proof) > MAX_PROOF or not all(isinstance(h, bytes) and len(h) == 32 for h in proof):
            raise DecodeError("receipt proof must be a list of 32-byte hashes")
        if not all(isinstance(w, str) for w in doc["witnesses"]):
            raise DecodeError("receipt witnesses must be verifier key strings")
        if doc["index"] < 0 or doc["quorum"] < 0:
            raise DecodeError("receipt index and quorum must not be negative")
        return cls(
            petition=names.check_petition_id(doc["petition"]),
            log=doc["log"],
            log_key=VerifierKey.parse(doc["log_key"]),
            quorum=doc["quorum"],
            witnesses=tuple(VerifierKey.parse(w) for w in doc["witnesses"]),
            checkpoint=doc["checkpoint"],
            index=doc["index"],
            entry=doc["entry"],
            proof=tuple(proof),
            salt=doc["salt"],
            record=doc["record"],
        )


@dataclass(frozen=True)
class CheckedReceipt:
    """What a receipt proves once every step passed."""

    receipt: Receipt
    checkpoint: Checkpoint
    entry: SignEntry
    record: PrivateRecord
    cosigners: tuple[str, ...]
    steps: tuple[str, ...] = RECEIPT_STEPS


def verify_receipt(receipt: Receipt) -> CheckedReceipt:
    """Check a receipt offline; raise VerificationError naming the failed step."""
    try:
        entry = parse_entry(receipt.entry)
        record = PrivateRecord.decode(receipt.record)
        host = names.check_node_name(receipt.log.split("/", 1)[0])
        if receipt.log != names.log_origin(host, receipt.petition):
            raise DecodeError("log origin does not belong to the receipt's petition")
        if receipt.log_key.name != host:
            raise DecodeError("log key is not named after the log's host")
    except FedPetitionError as e:
        raise VerificationError(STEP_FORMAT, str(e)) from e
    if not isinstance(entry, SignEntry):
        raise VerificationError(STEP_FORMAT, "the receipt's entry is not a sign entry")

    try:
        checkpoint, cosigners = open_log_checkpoint(receipt.checkpoint, receipt.log,
                                                    receipt.log_key, receipt.witnesses)
    except FedPetitionError as e:
        raise VerificationError(STEP_CHECKPOINT, str(e), log=receipt.log) from e
    if len(cosigners) < receipt.quorum:
        raise VerificationError(
            STEP_WITNESSES,
            f"{len(cosigners)} valid cosignatures, the policy requires {receipt.quorum}",
            log=receipt.log)

    try:
        merkle.verify_inclusion(merkle.leaf_hash(receipt.entry), receipt.index, checkpoint.size,
                                receipt.proof, checkpoint.root_hash)
    except FedPetitionError as e:
        raise VerificationError(STEP_INCLUSION, str(e), log=receipt.log,
                                index=receipt.index) from e

    if record.petition != receipt.petition:
        raise VerificationError(STEP_COMMITMENT, "the private record names another petition")
    try:
        expected = commitment(receipt.salt, receipt.record)
    except FedPetitionError as e:
        raise VerificationError(STEP_COMMITMENT, str(e)) from e
    if expected != entry.commitment:
        raise VerificationError(STEP_COMMITMENT,
                                "salt and private record do not open the entry's commitment")
    return CheckedReceipt(receipt, checkpoint, entry, record, tuple(cosigners))


def check_roster(receipt: Receipt, roster: HostRoster) -> None:
    """Raise VerificationError (``receipt-roster``) unless the receipt's log key is the
    one the petition's signed roster lists for its host, its witnesses are among the
    roster's, and its quorum is at least the roster's (spec §8.2): a receipt alone
    cannot vouch for the keys it carries."""
    host = receipt.log.split("/", 1)[0]
    listed = next((h for h in roster.hosts if h.name == host), None)
    if listed is None or listed.key != receipt.log_key:
        raise VerificationError(STEP_ROSTER, f"the petition's roster does not list {host} "
                                "with the key that signed this checkpoint", log=receipt.log)
    policy = roster.policy
    if not set(map(str, receipt.witnesses)) <= set(map(str, policy.eligible(listed.key))):
        raise VerificationError(STEP_ROSTER, "the receipt names witnesses the petition's "
                                "roster does not", log=receipt.log)
    if receipt.quorum < policy.quorum:
        raise VerificationError(STEP_ROSTER, f"the petition now requires {policy.quorum} "
                                "witnesses: the signer's page gives a fresh receipt",
                                log=receipt.log)


def check_consistency(
    receipt_checkpoint: Checkpoint,
    latest: Checkpoint,
    proof: Sequence[bytes],
) -> None:
    """Raise ProofError unless ``latest`` extends the receipt's checkpoint (spec §8.3)."""
    if latest.origin != receipt_checkpoint.origin:
        raise DecodeError("the latest checkpoint belongs to another log")
    merkle.verify_consistency(receipt_checkpoint.size, latest.size, proof,
                              receipt_checkpoint.root_hash, latest.root_hash)
