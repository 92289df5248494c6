"""Signed notes, checkpoints and Ed25519 cosignatures.

Implements three C2SP specifications, Ed25519 only:

* c2sp.org/signed-note: keys, verifier keys ("vkeys") and signed notes;
* c2sp.org/tlog-checkpoint: the checkpoint note body;
* c2sp.org/tlog-cosignature: timestamped Ed25519 cosignatures (vkey type 0x04).

Private keys use the golang.org/x/mod/sumdb/note encoding
``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``.

Everything is parsed strictly: a value is accepted only in its one canonical
encoding (lowercase hex key IDs, canonical padded base64, decimal sizes without
leading zeros), so that ``parse(x).to_string() == x`` whenever ``parse`` succeeds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from nacl.bindings import crypto_core_ed25519_is_valid_point

from fedpetition.core.errors import DecodeError, LocalProtocolError, SignatureError

__all__ = [
    "MAX_SIGNATURES",
    "MAX_TIMESTAMP",
    "MAX_TREE_SIZE",
    "SIG_TYPE_COSIGNATURE_V1",
    "SIG_TYPE_ED25519",
    "Checkpoint",
    "NoteSignature",
    "OpenedCheckpoint",
    "OpenedNote",
    "Signer",
    "VerifiedSignature",
    "VerifierKey",
    "add_signature_lines",
    "cosign",
    "cosignature_message",
    "open_checkpoint",
    "open_note",
    "parse_signature_line",
    "sign_checkpoint",
    "sign_note",
    "verify_cosignature_line",
]

# signed-note §Signature types: 0x01 Ed25519 over the note text.
SIG_TYPE_ED25519 = 0x01
# signed-note §Signature types / tlog-cosignature §Format: timestamped Ed25519 cosignature.
SIG_TYPE_COSIGNATURE_V1 = 0x04
_SIG_TYPES = (SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1)

# signed-note §Format lets verifiers cap the number of signatures (at least 16);
# 100 is the cap of golang.org/x/mod/sumdb/note.
MAX_SIGNATURES = 100
# tlog-cosignature §Format: the timestamp MUST NOT exceed 2^63 - 1.
MAX_TIMESTAMP = 2**63 - 1
# Tree sizes are kept within a signed 64-bit integer, like timestamps.
MAX_TREE_SIZE = 2**63 - 1

_ED25519_SEED_LEN = 32
_ED25519_PUBLIC_LEN = 32
_ED25519_SIG_LEN = 64
_KEY_ID_LEN = 4
_TIMESTAMP_LEN = 8
_HASH_LEN = 32

_SIG_PREFIX = "\u2014 "  # signed-note §Format: em dash, space
_COSIGNATURE_HEADER = b"cosignature/v1\n"  # tlog-cosignature §Ed25519 signed message

# signed-note §Format: no ASCII control characters other than newline.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_HEX_KEY_ID = re.compile(r"[0-9a-f]{8}")
# tlog-checkpoint §Note text: ASCII decimal, no leading zeros; 19 digits bound the work.
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")


# --------------------------------------------------------------------------- helpers


def _name_problem(name: object) -> str | None:
    """Why ``name`` is not a valid key name (signed-note §Format), or None."""
    if not isinstance(name, str):
        return "not a string"
    if not name:
        return "empty"
    if "+" in name:
        return "contains '+'"
    for ch in name:
        # str.isspace covers every Unicode White_Space character (and a few controls).
        if ch.isspace():
            return f"contains the space character U+{ord(ch):04X}"
        if ch < " ":
            return f"contains the control character U+{ord(ch):04X}"
    if not _is_utf8_encodable(name):
        return "is not valid UTF-8"
    return None


def _is_utf8_encodable(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def b64decode_canonical(s: str, what: str) -> bytes:
    """Decode standard padded base64, accepting only its canonical form."""
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError) as e:
        raise DecodeError(f"{what}: invalid base64") from e
    # Reject non-zero trailing bits and other non-canonical spellings, so a
    # single value has a single encoding.
    if base64.b64encode(raw).decode("ascii") != s:
        raise DecodeError(f"{what}: non-canonical base64")
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _compute_key_id(name: str, sig_type: int, public_key: bytes) -> int:
    """signed-note §Signatures: SHA-256(name || 0x0A || type || public key)[:4]."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([sig_type]) + public_key).digest()
    return int.from_bytes(digest[:_KEY_ID_LEN], "big")


def _key_ref(name: str, key_id: int) -> str:
    return f"{name}+{key_id:08x}"


def _format_line(name: str, key_id: int, blob: bytes) -> str:
    """signed-note §Signatures: ``— <name> base64(key ID || signature)``."""
    return f"{_SIG_PREFIX}{name} {_b64encode(key_id.to_bytes(_KEY_ID_LEN, 'big') + blob)}\n"


def _text_problem(text: object) -> str | None:
    """Why ``text`` cannot be the text of a signed note, or None."""
    if not isinstance(text, str):
        return "not a string"
    if not text.endswith("\n"):
        return "does not end with a newline"
    m = _CONTROL.search(text)
    if m is not None:
        return f"contains the control character U+{ord(m.group()):04X}"
    if not _is_utf8_encodable(text):
        return "is not valid UTF-8"
    return None


def _check_timestamp(timestamp: object) -> int:
    if (
        not isinstance(timestamp, int)
        or isinstance(timestamp, bool)
        or not 0 <= timestamp <= MAX_TIMESTAMP
    ):
        raise LocalProtocolError(f"cosignature timestamp {timestamp!r} is not in [0, 2^63-1]")
    return timestamp


def cosignature_message(checkpoint_body: str, timestamp: int) -> bytes:
    """The bytes an Ed25519 cosigner signs (tlog-cosignature §Ed25519 signed message).

    ``cosignature/v1\\n`` + ``time <decimal>\\n`` + the checkpoint body. The body
    is not validated here; :func:`cosign` does that.
    """
    _check_timestamp(timestamp)
    return _cosignature_message(checkpoint_body.encode("utf-8"), timestamp)


def _cosignature_message(body: bytes, timestamp: int) -> bytes:
    return _COSIGNATURE_HEADER + b"time " + str(timestamp).encode("ascii") + b"\n" + body


# --------------------------------------------------------------------------- keys


def _material_problem(name: object, sig_type: object, public_key: object) -> str | None:
    """Why these cannot be a supported key's name, type and public key, or None."""
    problem = _name_problem(name)
    if problem is not None:
        return f"key name {name!r} {problem}"
    if not isinstance(sig_type, int) or isinstance(sig_type, bool) or sig_type not in _SIG_TYPES:
        return f"unsupported signature type {sig_type!r} (want 0x01 or 0x04)"
    if not isinstance(public_key, bytes) or len(public_key) != _ED25519_PUBLIC_LEN:
        return "Ed25519 public key must be 32 bytes"
    # A small-order or non-canonical point would let a trivial signature verify
    # under some libraries and not others; refuse such keys outright.
    if not crypto_core_ed25519_is_valid_point(public_key):
        return "Ed25519 public key is not a valid prime-order point"
    return None


def _vkey_problem(name: object, sig_type: object, public_key: object, key_id: object) -> str | None:
    """Why these fields do not form a supported verifier key, or None."""
    problem = _material_problem(name, sig_type, public_key)
    if problem is not None:
        return problem
    if not isinstance(key_id, int) or isinstance(key_id, bool) or not 0 <= key_id < 2**32:
        return f"key ID {key_id!r} is not a uint32"
    assert isinstance(name, str) and isinstance(sig_type, int) and isinstance(public_key, bytes)
    want = _compute_key_id(name, sig_type, public_key)
    if key_id != want:
        return f"key ID {key_id:08x} does not match the key (want {want:08x})"
    return None


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A public key that may sign notes: name, type, Ed25519 key and key ID.

    ``sig_type`` is 0x01 (note signature) or 0x04 (timestamped cosignature);
    the key ID must be the one signed-note derives, so it can never mislead.
    """

    name: str
    sig_type: int
    public_key: bytes
    key_id: int
    _ed25519: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problem = _vkey_problem(self.name, self.sig_type, self.public_key, self.key_id)
        if problem is not None:
            raise LocalProtocolError(f"invalid verifier key: {problem}")
        # Load the key once so every verification is a single library call.
        object.__setattr__(self, "_ed25519", Ed25519PublicKey.from_public_bytes(self.public_key))

    @classmethod
    def from_public_key(
        cls, name: str, public_key: bytes, sig_type: int = SIG_TYPE_ED25519
    ) -> VerifierKey:
        """Build a key, deriving its key ID (signed-note §Signatures)."""
        problem = _material_problem(name, sig_type, public_key)
        if problem is not None:
            raise LocalProtocolError(f"invalid verifier key: {problem}")
        return cls(name, sig_type, public_key, _compute_key_id(name, sig_type, public_key))

    @classmethod
    def parse(cls, s: str) -> VerifierKey:
        """Parse ``<name>+<hex8 key ID>+<base64(type || public key)>`` (signed-note §Verifier keys).

        Stricter than Go's sumdb/note: the key ID must be exactly 8 lowercase hex
        digits and the base64 canonical, so that ``str(parse(s)) == s``.
        """
        if not isinstance(s, str):
            raise DecodeError("verifier key is not a string")
        parts = s.split("+", 2)
        if len(parts) != 3:
            raise DecodeError(f"verifier key {s!r}: want <name>+<key ID>+<key>")
        name, hex_id, key64 = parts
        problem = _name_problem(name)
        if problem is not None:
            raise DecodeError(f"verifier key {s!r}: key name {problem}")
        if _HEX_KEY_ID.fullmatch(hex_id) is None:
            raise DecodeError(f"verifier key {s!r}: key ID is not 8 lowercase hex digits")
        raw = b64decode_canonical(key64, f"verifier key {s!r}")
        if not raw:
            raise DecodeError(f"verifier key {s!r}: empty key material")
        problem = _vkey_problem(name, raw[0], raw[1:], int(hex_id, 16))
        if problem is not None:
            raise DecodeError(f"verifier key {s!r}: {problem}")
        return cls(name, raw[0], raw[1:], int(hex_id, 16))

    @property
    def key_ref(self) -> str:
        """``name+keyid``, how errors and signature lines identify this key."""
        return _key_ref(self.name, self.key_id)

    def to_string(self) -> str:
        """The vkey encoding; inverse of :meth:`parse`."""
        return f"{self.key_ref}+{_b64encode(bytes([self.sig_type]) + self.public_key)}"

    def __str__(self) -> str:
        return self.to_string()

    def verify(self, message: bytes, signature: bytes) -> None:
        """Check a raw 64-byte Ed25519 signature over ``message``; raise SignatureError."""
        if len(signature) != _ED25519_SIG_LEN:
            raise SignatureError(
                f"signature for key {self.key_ref} is {len(signature)} bytes, want 64"
            )
        if not self._check(message, signature):
            raise SignatureError(f"invalid signature for key {self.key_ref}")

    def _check(self, message: bytes, signature: bytes) -> bool:
        try:
            self._ed25519.verify(signature, message)
        except InvalidSignature:
            return False
        return True


class Signer:
    """An Ed25519 private key with a key name; signs notes and cosignatures.

    The core has no randomness: the caller supplies the 32-byte seed. The same
    signer yields different key IDs for types 0x01 and 0x04, but tlog-cosignature
    says a cosigner SHOULD have a key of its own.
    """

    __slots__ = ("_name", "_private", "_public", "_seed")

    def __init__(self, name: str, seed: bytes) -> None:
        problem = _name_problem(name)
        if problem is not None:
            raise LocalProtocolError(f"invalid key name {name!r}: {problem}")
        if not isinstance(seed, bytes) or len(seed) != _ED25519_SEED_LEN:
            raise LocalProtocolError("an Ed25519 seed is 32 bytes")
        self._name = name
        self._seed = seed
        self._private = Ed25519PrivateKey.from_private_bytes(seed)
        self._public = self._private.public_key().public_bytes_raw()

    @classmethod
    def generate(cls, name: str, seed_bytes: bytes) -> Signer:
        """Same as ``Signer(name, seed_bytes)``: randomness comes from the caller."""
        return cls(name, seed_bytes)

    @classmethod
    def from_private_key_string(cls, s: str) -> Signer:
        """Parse ``PRIVATE+KEY+<name>+<hex8>+<base64(0x01 || seed)>`` (Go sumdb/note).

        Error messages never quote the string: it is a secret.
        """
        if not isinstance(s, str):
            raise DecodeError("private key is not a string")
        parts = s.split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise DecodeError("private key: want PRIVATE+KEY+<name>+<key ID>+<key>")
        name, hex_id, key64 = parts[2], parts[3], parts[4]
        problem = _name_problem(name)
        if problem is not None:
            raise DecodeError(f"private key: key name {problem}")
        if _HEX_KEY_ID.fullmatch(hex_id) is None:
            raise DecodeError("private key: key ID is not 8 lowercase hex digits")
        try:
            raw = b64decode_canonical(key64, "private key")
        except DecodeError:
            raise DecodeError("private key: invalid base64") from None
        if len(raw) != 1 + _ED25519_SEED_LEN or raw[0] != SIG_TYPE_ED25519:
            raise DecodeError("private key: want type 0x01 and a 32-byte Ed25519 seed")
        signer = cls(name, raw[1:])
        if signer.key_id(SIG_TYPE_ED25519) != int(hex_id, 16):
            raise DecodeError(f"private key {name}+{hex_id}: key ID does not match the key")
        return signer

    def private_key_string(self) -> str:
        """The Go sumdb/note private key encoding; keep it secret."""
        key_id = self.key_id(SIG_TYPE_ED25519)
        key64 = _b64encode(bytes([SIG_TYPE_ED25519]) + self._seed)
        return f"PRIVATE+KEY+{self._name}+{key_id:08x}+{key64}"

    @property
    def name(self) -> str:
        return self._name

    @property
    def public_key(self) -> bytes:
        return self._public

    def key_id(self, sig_type: int) -> int:
        """The key ID for signature type 0x01 or 0x04 (signed-note §Signatures)."""
        if isinstance(sig_type, bool) or sig_type not in _SIG_TYPES:
            raise LocalProtocolError(f"unsupported signature type {sig_type!r}")
        return _compute_key_id(self._name, sig_type, self._public)

    def verifier_key(self, sig_type: int = SIG_TYPE_ED25519) -> VerifierKey:
        """The public half, as a vkey of the given type."""
        return VerifierKey(self._name, sig_type, self._public, self.key_id(sig_type))

    def sign(self, message: bytes) -> bytes:
        """Raw 64-byte Ed25519 signature (RFC 8032, deterministic)."""
        return self._private.sign(message)

    def __repr__(self) -> str:
        return f"Signer({self._name!r}, key_id={self.key_id(SIG_TYPE_ED25519):08x})"


# --------------------------------------------------------------------------- notes


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One syntactically valid signature line, verified or not."""

    name: str
    key_id: int
    signature: bytes  # what follows the 4-byte key ID
    line: str  # the line as it appeared, including "— " and the final newline

    @property
    def key_ref(self) -> str:
        return _key_ref(self.name, self.key_id)


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """A signature line that a known key verified."""

    key: VerifierKey
    timestamp: int | None  # the cosignature time for type 0x04, else None
    line: str


@dataclass(frozen=True, slots=True)
class OpenedNote:
    """A note whose signatures by known keys all verified (at least one)."""

    text: str
    verified: tuple[VerifiedSignature, ...]
    signatures: tuple[NoteSignature, ...]  # every line, in note order

    @property
    def verifiers(self) -> tuple[VerifierKey, ...]:
        return tuple(v.key for v in self.verified)

    @property
    def signature_lines(self) -> tuple[str, ...]:
        return tuple(s.line for s in self.signatures)

    @property
    def unverified(self) -> tuple[NoteSignature, ...]:
        """Lines by keys the caller did not list, ignored as signed-note requires."""
        known = {(v.key.name, v.key.key_id) for v in self.verified}
        return tuple(s for s in self.signatures if (s.name, s.key_id) not in known)


def _parse_line(line: str) -> NoteSignature:
    """Parse one signature line given without its newline."""
    # signed-note §Format: em dash, space, key name, space, base64, newline.
    if not line.startswith(_SIG_PREFIX):
        raise DecodeError(f"signature line {line[:80]!r} does not start with an em dash and space")
    name, sep, sig64 = line[len(_SIG_PREFIX) :].partition(" ")
    problem = _name_problem(name)
    if problem is not None:
        raise DecodeError(f"signature line {line[:80]!r}: key name {problem}")
    if not sep:
        raise DecodeError(f"signature line {line[:80]!r} has no signature")
    raw = b64decode_canonical(sig64, f"signature by {name}")
    # signed-note §Format: 4+n bytes; an empty signature is never valid.
    if len(raw) <= _KEY_ID_LEN:
        raise DecodeError(f"signature by {name} is only {len(raw)} bytes")
    key_id = int.from_bytes(raw[:_KEY_ID_LEN], "big")
    return NoteSignature(name, key_id, raw[_KEY_ID_LEN:], line + "\n")


def parse_signature_line(line: str) -> NoteSignature:
    """Parse one signature line, with or without its final newline."""
    if not isinstance(line, str):
        raise DecodeError("signature line is not a string")
    body = line[:-1] if line.endswith("\n") else line
    if "\n" in body:
        raise DecodeError("signature line contains a newline")
    m = _CONTROL.search(body)
    if m is not None:
        raise DecodeError(f"signature line contains the control character U+{ord(m.group()):04X}")
    if not _is_utf8_encodable(body):
        raise DecodeError("signature line is not valid UTF-8")
    return _parse_line(body)


def _split_note(note: str | bytes) -> tuple[str, list[NoteSignature]]:
    """Check a note's syntax and split it into text and signature lines."""
    if isinstance(note, bytes):
        try:
            s = note.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DecodeError("note is not valid UTF-8") from e
    elif isinstance(note, str):
        s = note
        if not _is_utf8_encodable(s):
            raise DecodeError("note is not valid UTF-8")
    else:
        raise DecodeError("note is neither str nor bytes")
    # signed-note §Format: no ASCII control characters other than newline.
    m = _CONTROL.search(s)
    if m is not None:
        raise DecodeError(f"note contains the control character U+{ord(m.group()):04X}")
    # signed-note §Format: the text is separated from the signatures by the
    # last empty line; the text keeps its final newline.
    split = s.rfind("\n\n")
    if split < 0:
        raise DecodeError("note has no blank line before its signatures")
    text, block = s[: split + 1], s[split + 2 :]
    if not block:
        raise DecodeError("note has no signature lines")
    if not block.endswith("\n"):
        raise DecodeError("note does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise DecodeError(f"note has {len(lines)} signature lines, more than {MAX_SIGNATURES}")
    return text, [_parse_line(line) for line in lines]


def _index_verifiers(verifiers: Sequence[VerifierKey]) -> dict[tuple[str, int], VerifierKey]:
    known: dict[tuple[str, int], VerifierKey] = {}
    for v in verifiers:
        if not isinstance(v, VerifierKey):
            raise LocalProtocolError(f"{v!r} is not a VerifierKey")
        prev = known.setdefault((v.name, v.key_id), v)
        if prev != v:
            # Two different keys that a signature line could not tell apart.
            raise LocalProtocolError(f"ambiguous verifier keys for {v.key_ref}")
    return known


def _check_signature(key: VerifierKey, text: bytes, sig: NoteSignature) -> int | None:
    """Verify one line by a known key; return its timestamp for type 0x04."""
    if key.sig_type == SIG_TYPE_ED25519:
        # signed-note §Ed25519 signatures: over the note text.
        key.verify(text, sig.signature)
        return None
    # tlog-cosignature §Format: timestamped_signature = u64 timestamp || ed25519[64].
    blob = sig.signature
    if len(blob) != _TIMESTAMP_LEN + _ED25519_SIG_LEN:
        raise SignatureError(
            f"cosignature by {key.key_ref} is {len(blob)} bytes, want 8 (time) + 64 (signature)"
        )
    timestamp = int.from_bytes(blob[:_TIMESTAMP_LEN], "big")
    if timestamp > MAX_TIMESTAMP:
        raise SignatureError(f"cosignature by {key.key_ref}: timestamp {timestamp} > 2^63-1")
    if not key._check(_cosignature_message(text, timestamp), blob[_TIMESTAMP_LEN:]):
        raise SignatureError(f"invalid cosignature for key {key.key_ref} (time {timestamp})")
    return timestamp


def _verify(
    text: str, sigs: Sequence[NoteSignature], verifiers: Sequence[VerifierKey]
) -> tuple[VerifiedSignature, ...]:
    """Verify every line by a known key; ignore the rest (signed-note §Signatures)."""
    known = _index_verifiers(verifiers)
    matched: list[tuple[NoteSignature, VerifierKey]] = []
    seen: set[tuple[str, int]] = set()
    for sig in sigs:
        ident = (sig.name, sig.key_id)
        key = known.get(ident)
        if key is None:
            continue  # unknown key: MUST be ignored, even if name or ID alone matches
        if ident in seen:
            raise DecodeError(f"note has two signatures by key {sig.key_ref}")
        seen.add(ident)
        matched.append((sig, key))
    # Syntax is settled before any (costlier) signature check.
    text_bytes = text.encode("utf-8")
    return tuple(
        VerifiedSignature(key, _check_signature(key, text_bytes, sig), sig.line)
        for sig, key in matched
    )


def _describe_keys(keys: Sequence[str]) -> str:
    return ", ".join(keys) if keys else "none"


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """Sign ``text`` with Ed25519 (type 0x01) by each signer, in order."""
    problem = _text_problem(text)
    if problem is not None:
        raise LocalProtocolError(f"note text {problem}")
    if not signers:
        raise LocalProtocolError("a signed note needs at least one signer")
    if len(signers) > MAX_SIGNATURES:
        raise LocalProtocolError(f"more than {MAX_SIGNATURES} signers")
    message = text.encode("utf-8")
    lines: list[str] = []
    seen: set[tuple[str, int]] = set()
    for signer in signers:
        key_id = signer.key_id(SIG_TYPE_ED25519)
        if (signer.name, key_id) in seen:
            raise LocalProtocolError(f"signer {_key_ref(signer.name, key_id)} listed twice")
        seen.add((signer.name, key_id))
        lines.append(_format_line(signer.name, key_id, signer.sign(message)))
    return text + "\n" + "".join(lines)


def open_note(note: str | bytes, verifiers: Sequence[VerifierKey]) -> OpenedNote:
    """Parse a signed note and verify the signatures by ``verifiers``.

    Unknown keys (name and key ID not both matching) are ignored; a failing
    signature by a known key rejects the note; so does having none that verifies
    (signed-note §Signatures).
    """
    text, sigs = _split_note(note)
    verified = _verify(text, sigs, verifiers)
    if not verified:
        raise SignatureError(
            "note has no signature by a known key (known: "
            f"{_describe_keys([v.key_ref for v in verifiers])}; "
            f"present: {_describe_keys([s.key_ref for s in sigs])})"
        )
    return OpenedNote(text, verified, tuple(sigs))


def add_signature_lines(note: str | bytes, lines: Sequence[str]) -> str:
    """Append signature lines (e.g. cosignatures) to a signed note.

    Existing lines are kept in order. A line identical to one already present is
    skipped; a different line by the same ``name+keyid`` is refused. Nothing is
    verified here: use :func:`open_checkpoint` or :func:`verify_cosignature_line`.
    """
    text, existing = _split_note(note)
    out = [s.line for s in existing]
    by_key = {(s.name, s.key_id): s.line for s in existing}
    for line in lines:
        sig = parse_signature_line(line)
        prev = by_key.get((sig.name, sig.key_id))
        if prev == sig.line:
            continue
        if prev is not None:
            raise LocalProtocolError(f"note already has a different signature by {sig.key_ref}")
        by_key[(sig.name, sig.key_id)] = sig.line
        out.append(sig.line)
    if len(out) > MAX_SIGNATURES:
        raise LocalProtocolError(f"note would have more than {MAX_SIGNATURES} signatures")
    return text + "\n" + "".join(out)


# --------------------------------------------------------------------------- checkpoints


def _line_problem(line: object) -> str | None:
    """Why ``line`` cannot be one line of a checkpoint body, or None."""
    if not isinstance(line, str):
        return "is not a string"
    if not line:
        return "is empty"
    if "\n" in line:
        return "contains a newline"
    m = _CONTROL.search(line)
    if m is not None:
        return f"contains the control character U+{ord(m.group()):04X}"
    if not _is_utf8_encodable(line):
        return "is not valid UTF-8"
    return None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's tree head: origin, size and RFC 6962 root hash (tlog-checkpoint)."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problem = _line_problem(self.origin)
        if problem is not None:
            raise LocalProtocolError(f"checkpoint origin {self.origin!r} {problem}")
        if (
            not isinstance(self.size, int)
            or isinstance(self.size, bool)
            or not 0 <= self.size <= MAX_TREE_SIZE
        ):
            raise LocalProtocolError(f"checkpoint size {self.size!r} is not in [0, 2^63-1]")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != _HASH_LEN:
            raise LocalProtocolError("checkpoint root hash must be 32 bytes")
        if not isinstance(self.extensions, tuple):
            raise LocalProtocolError("checkpoint extensions must be a tuple of lines")
        for ext in self.extensions:
            problem = _line_problem(ext)
            if problem is not None:
                raise LocalProtocolError(f"checkpoint extension line {ext!r} {problem}")

    def body(self) -> str:
        """The note text (tlog-checkpoint §Note text), every line newline-terminated."""
        head = f"{self.origin}\n{self.size}\n{_b64encode(self.root_hash)}\n"
        return head + "".join(ext + "\n" for ext in self.extensions)

    @classmethod
    def parse_body(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body strictly; inverse of :meth:`body`."""
        if not isinstance(text, str):
            raise DecodeError("checkpoint body is not a string")
        if not text.endswith("\n"):
            raise DecodeError("checkpoint body does not end with a newline")
        if not _is_utf8_encodable(text):
            raise DecodeError("checkpoint body is not valid UTF-8")
        m = _CONTROL.search(text)
        if m is not None:
            raise DecodeError(
                f"checkpoint body contains the control character U+{ord(m.group()):04X}"
            )
        # tlog-checkpoint §Note text: at least three non-empty lines.
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise DecodeError(f"checkpoint body has {len(lines)} lines, want at least 3")
        origin, size_text, root_text, *extensions = lines
        if not origin:
            raise DecodeError("checkpoint origin is empty")
        # §Note text 2: ASCII decimal without leading zeros (no sign, no "_").
        if _DECIMAL.fullmatch(size_text) is None:
            raise DecodeError(f"checkpoint {origin!r}: tree size {size_text[:40]!r} is malformed")
        size = int(size_text)
        if size > MAX_TREE_SIZE:
            raise DecodeError(f"checkpoint {origin!r}: tree size {size} >= 2^63")
        # §Note text 3: base64 of the 32-byte RFC 6962 root hash.
        root_hash = b64decode_canonical(root_text, f"checkpoint {origin!r} root hash")
        if len(root_hash) != _HASH_LEN:
            raise DecodeError(
                f"checkpoint {origin!r}: root hash is {len(root_hash)} bytes, want 32"
            )
        # §Note text 4: extension lines, if any, MUST be non-empty.
        for i, ext in enumerate(extensions):
            if not ext:
                raise DecodeError(f"checkpoint {origin!r}: extension line {i + 1} is empty")
        return cls(origin, size, root_hash, tuple(extensions))


@dataclass(frozen=True, slots=True)
class OpenedCheckpoint:
    """A checkpoint signed by its log, with the cosignatures that verified."""

    checkpoint: Checkpoint
    note: OpenedNote
    cosignatures: tuple[tuple[VerifierKey, int], ...]  # (cosigner, timestamp)


def sign_checkpoint(cp: Checkpoint, signer: Signer) -> str:
    """The checkpoint as a note signed by the log (type 0x01)."""
    return sign_note(cp.body(), [signer])


def open_checkpoint(
    note: str | bytes,
    log_key: VerifierKey,
    cosigners: Sequence[VerifierKey] = (),
) -> OpenedCheckpoint:
    """Open a checkpoint that ``log_key`` must have signed; collect cosignatures.

    Any failing signature by the log or a listed cosigner rejects the whole
    note. The caller still has to compare ``checkpoint.origin`` with the log it
    expects: tlog-checkpoint only says the key name SHOULD match the origin.
    """
    if log_key.sig_type != SIG_TYPE_ED25519:
        raise LocalProtocolError(f"log key {log_key.key_ref} must be of type 0x01")
    for c in cosigners:
        if c.sig_type != SIG_TYPE_COSIGNATURE_V1:
            raise LocalProtocolError(f"cosigner key {c.key_ref} must be of type 0x04")
    text, sigs = _split_note(note)
    # Parse before any signature check: malformed bodies are rejected cheaply.
    checkpoint = Checkpoint.parse_body(text)
    verified = _verify(text, sigs, [log_key, *cosigners])
    if not any(v.key == log_key for v in verified):
        raise SignatureError(
            f"checkpoint for origin {checkpoint.origin!r} has no signature by log key "
            f"{log_key.key_ref} (present: {_describe_keys([s.key_ref for s in sigs])})"
        )
    cosignatures = tuple((v.key, v.timestamp) for v in verified if v.timestamp is not None)
    return OpenedCheckpoint(checkpoint, OpenedNote(text, verified, tuple(sigs)), cosignatures)


# --------------------------------------------------------------------------- cosignatures


def cosign(checkpoint_body: str, signer: Signer, timestamp: int) -> str:
    """One cosignature line (tlog-cosignature, Ed25519, key type 0x04).

    ``timestamp`` is the POSIX time of signing, passed in because the core has
    no clock. The body must be a valid checkpoint: cosigners vouch for those only.
    """
    _check_timestamp(timestamp)
    try:
        Checkpoint.parse_body(checkpoint_body)
    except DecodeError as e:
        raise LocalProtocolError(f"refusing to cosign an invalid checkpoint: {e}") from e
    message = _cosignature_message(checkpoint_body.encode("utf-8"), timestamp)
    blob = timestamp.to_bytes(_TIMESTAMP_LEN, "big") + signer.sign(message)
    return _format_line(signer.name, signer.key_id(SIG_TYPE_COSIGNATURE_V1), blob)


def verify_cosignature_line(checkpoint_body: str, line: str, cosigner: VerifierKey) -> int:
    """Check that ``line`` is ``cosigner``'s valid cosignature of the body; return its time.

    For a log collecting cosignatures before adding them with
    :func:`add_signature_lines`.
    """
    if cosigner.sig_type != SIG_TYPE_COSIGNATURE_V1:
        raise LocalProtocolError(f"cosigner key {cosigner.key_ref} must be of type 0x04")
    Checkpoint.parse_body(checkpoint_body)
    sig = parse_signature_line(line)
    if (sig.name, sig.key_id) != (cosigner.name, cosigner.key_id):
        raise SignatureError(f"cosignature line is by {sig.key_ref}, not {cosigner.key_ref}")
    timestamp = _check_signature(cosigner, checkpoint_body.encode("utf-8"), sig)
    assert timestamp is not None
    return timestamp
