"""Signed petition documents (spec §3): petition versions, the host roster and the
evaluation counts.

All are canonical MessagePack maps signed by the petition's origin node. They
travel inside a small envelope, ``{"body": <bin>, "signature": <bin 64>}``; the
signature is Ed25519 over ``DOCUMENT_CONTEXT || body``. Entries bind to a version
by its digest, SHA-256(body), so the digest never depends on the envelope.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import encoding, names, voprf
from .errors import DecodeError, LocalProtocolError, SignatureError
from .notes import SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_ED25519, Signer, VerifierKey

DOCUMENT_CONTEXT = b"fedpetition-document/v1\n"  # spec §3.1: domain separation
DIGEST_SIZE = 32
MAX_TITLE = 300
MAX_TEXT = 50_000
MAX_ADDRESSEE = 300
MAX_HOSTS = 1000
MAX_TIME = 2**40  # spec §3.2: far beyond any real date, keeps times in int64
MAX_EVALUATED_NODES = 10 * MAX_HOSTS  # spec §3.6: hosts come and go, their counts stay
MAX_COUNT = 2**63 - 1  # spec §3.6: counts stay in int64



def _is_int(value: object) -> bool:
    """An integer, and not a boolean (which Python counts as one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_time(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < MAX_TIME:
        raise DecodeError(f"{what} must be a Unix time in seconds")
    return value


def _check_text(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise DecodeError(f"{what} must be a non-empty string of at most {limit} characters")
    return value


def _expect_keys(doc: Mapping[str, Any], required: set[str], optional: set[str], what: str) -> None:
    keys = set(doc)
    missing = required - keys
    if missing:
        raise DecodeError(f"{what} lacks {', '.join(sorted(missing))}")
    unknown = keys - required - optional
    if unknown:
        raise DecodeError(f"{what} has unknown fields {', '.join(sorted(unknown))}")


class _SelfChecked:
    """A document that checks itself when built: a bad value is a LocalProtocolError.

    ``_check`` raises DecodeError, so that ``decode`` can report the same rule
    breaking as bad input.
    """

    __slots__ = ()

    def _check(self) -> None:
        raise NotImplementedError

    def __post_init__(self) -> None:
        try:
            self._check()
        except DecodeError as e:
            raise LocalProtocolError(str(e)) from e


@dataclass(frozen=True, slots=True)
class SignedDocument:
    """A document body and the origin's signature over it (spec §3.1)."""

    body: bytes
    signature: bytes

    @property
    def digest(self) -> bytes:
        """SHA-256 of the body: what entries and later versions refer to."""
        return hashlib.sha256(self.body).digest()

    def encode(self) -> bytes:
        return encoding.encode({"body": self.body, "signature": self.signature})

    @classmethod
    def decode(cls, data: bytes) -> SignedDocument:
        doc = encoding.decode_map(data, "signed document")
        _expect_keys(doc, {"body", "signature"}, set(), "signed document")
        body, signature = doc["body"], doc["signature"]
        if not isinstance(body, bytes) or not isinstance(signature, bytes):
            raise DecodeError("signed document body and signature must be byte strings")
        if len(signature) != 64:
            raise DecodeError("signed document signature must be 64 bytes")
        return cls(body, signature)

    @classmethod
    def sign(cls, body: bytes, signer: Signer) -> SignedDocument:
        return cls(body, signer.sign(DOCUMENT_CONTEXT + body))

    def verify(self, key: VerifierKey) -> None:
        """Raise SignatureError unless ``key`` signed this document."""
        if key.sig_type != SIG_TYPE_ED25519:
            raise LocalProtocolError("documents are verified with an Ed25519 note key")
        try:
            key.verify(DOCUMENT_CONTEXT + self.body, self.signature)
        except SignatureError as e:
            raise SignatureError(f"document is not signed by {key.name}: {e}") from e


@dataclass(frozen=True, slots=True)
class PetitionVersion(_SelfChecked):
    """One version of a petition's text (spec §3.2)."""

    id: str
    version: int
    previous: bytes | None
    languages: tuple[str, ...]
    title: Mapping[str, str]
    text: Mapping[str, str]
    addressee: str
    created: int
    deadline: int
    oprf_key: bytes  # the origin's VOPRF public key for this petition (spec §4.4)
    thresholds: tuple[int, ...] = ()

    def _check(self) -> None:
        names.check_petition_id(self.id)
        if not isinstance(self.oprf_key, bytes):
            raise DecodeError("oprf_key must be a byte string")
        voprf.decode_element(self.oprf_key, "oprf_key")
        if not _is_int(self.version) or self.version < 1:
            raise DecodeError("petition version must be a positive integer")
        if (self.previous is None) != (self.version == 1):
            raise DecodeError("previous is null exactly for version 1")
        if self.previous is not None and len(self.previous) != DIGEST_SIZE:
            raise DecodeError("previous must be a 32-byte digest")
        for lang in self.languages:
            names.check_language(lang)
        if not self.languages or len(set(self.languages)) != len(self.languages):
            raise DecodeError("languages must be a non-empty list without repeats")
        limits = (("title", self.title, MAX_TITLE), ("text", self.text, MAX_TEXT))
        for field, texts, limit in limits:
            if not all(isinstance(k, str) for k in texts) or set(texts) != set(self.languages):
                raise DecodeError(f"{field} must have exactly one entry per language")
            for lang, value in texts.items():
                _check_text(value, f"{field}[{lang}]", limit)
        _check_text(self.addressee, "addressee", MAX_ADDRESSEE)
        _check_time(self.created, "created")
        _check_time(self.deadline, "deadline")
        if self.deadline <= self.created:
            raise DecodeError("deadline must be after created")
        previous = 0
        for threshold in self.thresholds:
            if not _is_int(threshold):
                raise DecodeError("thresholds must be integers")
            if threshold <= previous:
                raise DecodeError("thresholds must be positive and strictly increasing")
            previous = threshold

    def to_map(self) -> dict[str, Any]:
        return {
            "type": "petition",
            "id": self.id,
            "version": self.version,
            "previous": self.previous,
            "languages": list(self.languages),
            "title": dict(self.title),
            "text": dict(self.text),
            "addressee": self.addressee,
            "created": self.created,
            "deadline": self.deadline,
            "oprf_key": self.oprf_key,
            "thresholds": list(self.thresholds),
        }

    def encode(self) -> bytes:
        return encoding.encode(self.to_map())

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.encode()).digest()

    @classmethod
    def decode(cls, body: bytes) -> PetitionVersion:
        doc = encoding.decode_map(body, "petition document")
        fields = {"type", "id", "version", "previous", "languages", "title", "text",
                  "addressee", "created", "deadline", "oprf_key", "thresholds"}
        _expect_keys(doc, fields, set(), "petition document")
        if doc["type"] != "petition":
            raise DecodeError("petition document type must be 'petition'")
        for field in ("languages", "thresholds"):
            if not isinstance(doc[field], list):
                raise DecodeError(f"{field} must be an array")
        for field in ("title", "text"):
            if not isinstance(doc[field], dict):
                raise DecodeError(f"{field} must be a map")
        if doc["previous"] is not None and not isinstance(doc["previous"], bytes):
            raise DecodeError("previous must be a byte string or nil")
        try:
            return cls(
                id=doc["id"],
                version=doc["version"],
                previous=doc["previous"],
                languages=tuple(doc["languages"]),
                title=doc["title"],
                text=doc["text"],
                addressee=doc["addressee"],
                created=doc["created"],
                deadline=doc["deadline"],
                oprf_key=doc["oprf_key"],
                thresholds=tuple(doc["thresholds"]),
            )
        except LocalProtocolError as e:
            raise DecodeError(f"petition document: {e}") from e


@dataclass(frozen=True, slots=True)
class Host:
    """A node admitted to collect signatures for a petition (spec §3.3)."""

    name: str
    key: VerifierKey  # its note key (type 0x01): signs its checkpoints

    def to_map(self) -> dict[str, Any]:
        return {"name": self.name, "key": str(self.key)}


@dataclass(frozen=True, slots=True)
class WitnessPolicy:
    """Which cosigners must vouch for a log's checkpoint, and how many (spec §3.4)."""

    quorum: int
    witnesses: tuple[VerifierKey, ...]

    def to_map(self) -> dict[str, Any]:
        return {"quorum": self.quorum, "witnesses": [str(w) for w in self.witnesses]}

    def eligible(self, log_key: VerifierKey) -> tuple[VerifierKey, ...]:
        """The witnesses that may vouch for a log: never the log's own key."""
        return tuple(w for w in self.witnesses if w.public_key != log_key.public_key)


@dataclass(frozen=True, slots=True)
class HostRoster(_SelfChecked):
    """The origin's signed list of hosts and witness policy (spec §3.3)."""

    petition: str
    serial: int
    hosts: tuple[Host, ...]
    policy: WitnessPolicy

    def _check(self) -> None:
        names.check_petition_id(self.petition)
        if not _is_int(self.serial) or self.serial < 1:
            raise DecodeError("roster serial must be a positive integer")
        if not 0 < len(self.hosts) <= MAX_HOSTS:
            raise DecodeError(f"a roster lists 1 to {MAX_HOSTS} hosts")
        seen_names: set[str] = set()
        seen_keys: set[bytes] = set()
        for host in self.hosts:
            names.check_node_name(host.name)
            if host.key.name != host.name or host.key.sig_type != SIG_TYPE_ED25519:
                raise DecodeError(
                    f"host {host.name} key must be an Ed25519 note key named after it")
            if host.name in seen_names or host.key.public_key in seen_keys:
                raise DecodeError(f"host {host.name} is listed twice")
            seen_names.add(host.name)
            seen_keys.add(host.key.public_key)
        witness_keys = set()
        witness_names = set()
        for witness in self.policy.witnesses:
            if witness.name in witness_names:
                raise DecodeError(f"two witnesses are named {witness.name}")
            witness_names.add(witness.name)
            if witness.sig_type != SIG_TYPE_COSIGNATURE_V1:
                raise DecodeError(f"witness {witness.name} must be a cosignature key (type 0x04)")
            if witness.public_key in witness_keys:
                raise DecodeError(f"witness {witness.name} is listed twice")
            witness_keys.add(witness.public_key)
        quorum = self.policy.quorum
        if not _is_int(quorum) or quorum < 0:
            raise DecodeError("witness quorum must be a non-negative integer")
        for host in self.hosts:
            if quorum > len(self.policy.eligible(host.key)):
                raise DecodeError(f"witness quorum {quorum} cannot be met for host {host.name}")

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def to_map(self) -> dict[str, Any]:
        return {
            "type": "hosts",
            "petition": self.petition,
            "serial": self.serial,
            "hosts": [h.to_map() for h in self.hosts],
            "witness_policy": self.policy.to_map(),
        }

    def encode(self) -> bytes:
        return encoding.encode(self.to_map())

    @classmethod
    def decode(cls, body: bytes) -> HostRoster:
        doc = encoding.decode_map(body, "host roster")
        _expect_keys(doc, {"type", "petition", "serial", "hosts", "witness_policy"}, set(),
                     "host roster")
        if doc["type"] != "hosts":
            raise DecodeError("host roster type must be 'hosts'")
        if not isinstance(doc["hosts"], list):
            raise DecodeError("hosts must be an array")
        hosts = []
        for item in doc["hosts"]:
            if not isinstance(item, dict):
                raise DecodeError("each host must be a map")
            _expect_keys(item, {"name", "key"}, set(), "host")
            hosts.append(Host(names.check_node_name(item["name"]), _parse_vkey(item["key"])))
        policy = doc["witness_policy"]
        if not isinstance(policy, dict):
            raise DecodeError("witness_policy must be a map")
        _expect_keys(policy, {"quorum", "witnesses"}, set(), "witness_policy")
        if not isinstance(policy["witnesses"], list):
            raise DecodeError("witnesses must be an array")
        witnesses = tuple(_parse_vkey(w) for w in policy["witnesses"])
        if not isinstance(policy["quorum"], int) or isinstance(policy["quorum"], bool):
            raise DecodeError("witness quorum must be an integer")
        try:
            return cls(doc["petition"], doc["serial"], tuple(hosts),
                       WitnessPolicy(policy["quorum"], witnesses))
        except LocalProtocolError as e:
            raise DecodeError(f"host roster: {e}") from e


@dataclass(frozen=True, slots=True)
class EvaluationCounts(_SelfChecked):
    """The origin's signed count of nullifier evaluations served per host (spec §3.6).

    A host turns each evaluation into at most one nullifier, so a host's log
    cannot honestly hold more sign entries than the evaluations it was served.
    The origin evaluates its own signers locally and never counts itself.
    """

    petition: str
    counts: Mapping[str, int]  # host node name -> evaluations served to it
    time: int  # when the origin read its counts

    def _check(self) -> None:
        names.check_petition_id(self.petition)
        _check_time(self.time, "evaluations time")
        if len(self.counts) > MAX_EVALUATED_NODES:
            raise DecodeError(f"evaluation counts list at most {MAX_EVALUATED_NODES} nodes")
        origin = names.petition_origin(self.petition)
        for node, count in self.counts.items():
            names.check_node_name(node)
            if node == origin:
                raise DecodeError("the origin evaluates its own signers and does not count them")
            if not _is_int(count) or not 0 <= count <= MAX_COUNT:
                raise DecodeError(f"the count for {node} must be an integer from 0 to 2^63 - 1")

    def served(self, node: str) -> int:
        """Evaluations served to ``node``: 0 for a node the counts do not list."""
        return self.counts.get(node, 0)

    def to_map(self) -> dict[str, Any]:
        return {
            "type": "evaluations",
            "petition": self.petition,
            "counts": dict(self.counts),
            "time": self.time,
        }

    def encode(self) -> bytes:
        return encoding.encode(self.to_map())

    @classmethod
    def decode(cls, body: bytes) -> EvaluationCounts:
        doc = encoding.decode_map(body, "evaluation counts")
        _expect_keys(doc, {"type", "petition", "counts", "time"}, set(), "evaluation counts")
        if doc["type"] != "evaluations":
            raise DecodeError("evaluation counts type must be 'evaluations'")
        if not isinstance(doc["counts"], dict):
            raise DecodeError("counts must be a map")
        try:
            return cls(doc["petition"], dict(doc["counts"]), doc["time"])
        except LocalProtocolError as e:
            raise DecodeError(f"evaluation counts: {e}") from e


def _parse_vkey(value: object) -> VerifierKey:
    if not isinstance(value, str):
        raise DecodeError("a verifier key must be a string")
    return VerifierKey.parse(value)


def sign_petition(version: PetitionVersion, signer: Signer) -> SignedDocument:
    """Sign a petition version as its origin (spec §3.2)."""
    if signer.name != names.petition_origin(version.id):
        raise LocalProtocolError("only the petition's origin node signs its versions")
    return SignedDocument.sign(version.encode(), signer)


def sign_roster(roster: HostRoster, signer: Signer) -> SignedDocument:
    """Sign a host roster as the petition's origin (spec §3.3)."""
    if signer.name != names.petition_origin(roster.petition):
        raise LocalProtocolError("only the petition's origin node signs its roster")
    return SignedDocument.sign(roster.encode(), signer)


def sign_evaluations(counts: EvaluationCounts, signer: Signer) -> SignedDocument:
    """Sign evaluation counts as the petition's origin (spec §3.6)."""
    if signer.name != names.petition_origin(counts.petition):
        raise LocalProtocolError("only the petition's origin signs its evaluation counts")
    return SignedDocument.sign(counts.encode(), signer)


def check_version_chain(versions: Sequence[PetitionVersion], digests: Sequence[bytes]) -> None:
    """Raise DecodeError unless versions 1..n form one hash chain (spec §3.2)."""
    if not versions:
        raise DecodeError("a petition has at least one version")
    petition_id = versions[0].id
    for number, (version, _digest) in enumerate(zip(versions, digests, strict=True), start=1):
        if version.id != petition_id:
            raise DecodeError(f"version {number} belongs to petition {version.id}")
        if version.version != number:
            raise DecodeError(f"version {number} is numbered {version.version}")
        if number > 1:
            if version.previous != digests[number - 2]:
                raise DecodeError(f"version {number} does not chain to version {number - 1}")
            if version.created < versions[number - 2].created:
                raise DecodeError(f"version {number} is older than version {number - 1}")
            if version.oprf_key != versions[0].oprf_key:
                raise DecodeError(f"version {number} changes the petition's oprf_key")


def open_versions(documents: Sequence[SignedDocument], petition_id: str,
                  origin_key: VerifierKey) -> list[PetitionVersion]:
    """Versions 1..n of ``petition_id``, each signed by its origin, chained (spec §3.1, §3.2).

    Raises SignatureError or DecodeError. Verifiers and hosts check a petition's
    documents alike with this.
    """
    for document in documents:
        document.verify(origin_key)
    versions = [PetitionVersion.decode(d.body) for d in documents]
    check_version_chain(versions, [d.digest for d in documents])
    if versions[0].id != petition_id:
        raise DecodeError(f"documents are for {versions[0].id}, not {petition_id}")
    return versions


def open_roster(document: SignedDocument, petition_id: str,
                origin_key: VerifierKey) -> HostRoster:
    """The host roster of ``petition_id``, signed by its origin (spec §3.3)."""
    document.verify(origin_key)
    roster = HostRoster.decode(document.body)
    if roster.petition != petition_id:
        raise DecodeError(f"the roster is for {roster.petition}")
    return roster


def reference_witness_policy(hosts: Sequence[Host]) -> WitnessPolicy:
    """The reference policy (spec §14.15): every host witnesses the others, quorum ⌊k/2⌋.

    Each log has k - 1 eligible witnesses, of which ceil((k - 1) / 2) must cosign:
    a minority of hosts being down delays no checkpoint, and every cosigned
    checkpoint was seen by that many other hosts, each of which refuses to cosign
    a view inconsistent with one it cosigned. Two disjoint quorums exist when k is
    odd, so a split view shown to two disjoint halves is not prevented, only made
    to need distinct honest witnesses for each side.
    """
    witnesses = tuple(VerifierKey.from_public_key(h.name, h.key.public_key,
                                                  SIG_TYPE_COSIGNATURE_V1) for h in hosts)
    return WitnessPolicy(len(hosts) // 2, witnesses)
