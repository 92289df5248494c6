"""Log entries (spec §4): ``sign`` and ``withdraw``, with no personal data.

An entry is a canonical MessagePack map. It names the petition version it binds
to by digest, the signer's nullifier (a per-petition pseudonym, §4.4), a coarse
hour, and for ``sign`` a commitment to the signer's private record so that the
signer alone can later prove which entry is theirs.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import msgpack

from . import encoding, names
from .errors import DecodeError, LocalProtocolError

TIME_GRANULARITY = 3600  # spec §4.2: entries carry the hour, not the second
NULLIFIER_SIZE = 32
COMMITMENT_SIZE = 32
SALT_SIZE = 32
METHODS = frozenset({"email"})  # spec §4.1: how the signer was verified
MAX_ENTRY_SIZE = 65535  # tlog-tiles entry bundles use a 16-bit length prefix
COMMITMENT_CONTEXT = b"fedpetition-commitment/v1\n"

_SIGN_KEYS = ("commitment", "method", "nullifier", "petition", "time", "type")
_SIGN_KEYS_REGION = ("commitment", "method", "nullifier", "petition", "region", "time", "type")
_WITHDRAW_KEYS = ("nullifier", "petition", "time", "type")


def coarse_time(unix_seconds: int) -> int:
    """Round a time down to the hour that entries record (spec §4.2)."""
    return unix_seconds - unix_seconds % TIME_GRANULARITY


@dataclass(frozen=True, slots=True)
class SignEntry:
    """A signer's confirmed signature (spec §4.1)."""

    petition: bytes  # digest of the petition version signed
    nullifier: bytes
    commitment: bytes
    time: int
    method: str = "email"
    region: str | None = None

    def __post_init__(self) -> None:
        _check_common(self.petition, self.nullifier, self.time, LocalProtocolError)
        if len(self.commitment) != COMMITMENT_SIZE:
            raise LocalProtocolError("commitment must be 32 bytes")
        if self.method not in METHODS:
            raise LocalProtocolError(f"unknown verification method {self.method!r}")
        if self.region is not None:
            names.check_region(self.region)

    def encode(self) -> bytes:
        value: dict[str, Any] = {
            "type": "sign",
            "petition": self.petition,
            "nullifier": self.nullifier,
            "commitment": self.commitment,
            "time": self.time,
            "method": self.method,
        }
        if self.region is not None:
            value["region"] = self.region
        return encoding.encode(value)


@dataclass(frozen=True, slots=True)
class WithdrawEntry:
    """A signer's withdrawal of an earlier signature in the same log (spec §4.1)."""

    petition: bytes  # digest of the petition version current at withdrawal
    nullifier: bytes
    time: int

    def __post_init__(self) -> None:
        _check_common(self.petition, self.nullifier, self.time, LocalProtocolError)

    def encode(self) -> bytes:
        return encoding.encode(
            {"type": "withdraw", "petition": self.petition, "nullifier": self.nullifier,
             "time": self.time}
        )


Entry = SignEntry | WithdrawEntry


def _check_common(
    petition: object, nullifier: object, time: object, error: type[Exception]
) -> None:
    if not isinstance(petition, bytes) or len(petition) != 32:
        raise error("petition must be a 32-byte version digest")
    if not isinstance(nullifier, bytes) or len(nullifier) != NULLIFIER_SIZE:
        raise error("nullifier must be 32 bytes")
    if not isinstance(time, int) or isinstance(time, bool) or time < 0 or time >= 2**40:
        raise error("time must be a Unix time in seconds")
    if time % TIME_GRANULARITY:
        raise error("time must be a whole hour")


def parse_entry(data: bytes) -> Entry:
    """Decode one entry strictly (spec §4.1); raises DecodeError.

    This runs once per entry in a verification, so it checks canonicity directly:
    msgpack decodes, the keys must be exactly one of the allowed sets in sorted
    order, and re-encoding the decoded map must give the same bytes.
    """
    if len(data) > MAX_ENTRY_SIZE:
        raise DecodeError("entry is too large")
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True,
                                ext_hook=_no_ext)
    except (ValueError, TypeError, UnicodeDecodeError, msgpack.UnpackException) as e:
        raise DecodeError(f"entry is not valid MessagePack: {e}") from e
    if not isinstance(value, dict):
        raise DecodeError("entry must be a map")
    keys = tuple(value)
    kind = value.get("type")
    if kind == "sign":
        if keys != _SIGN_KEYS and keys != _SIGN_KEYS_REGION:
            raise DecodeError(f"sign entry must have exactly the fields {_SIGN_KEYS_REGION}"
                              " (region optional), in canonical order")
    elif kind == "withdraw":
        if keys != _WITHDRAW_KEYS:
            raise DecodeError(f"withdraw entry must have exactly the fields {_WITHDRAW_KEYS}"
                              " in canonical order")
    else:
        raise DecodeError("entry type must be 'sign' or 'withdraw'")
    petition, nullifier, time = value["petition"], value["nullifier"], value["time"]
    _check_common(petition, nullifier, time, DecodeError)
    entry: Entry
    if kind == "sign":
        commitment, method = value["commitment"], value["method"]
        region = value.get("region")
        if "region" in value and not isinstance(region, str):
            raise DecodeError("region must be a string when present")
        if not isinstance(commitment, bytes) or len(commitment) != COMMITMENT_SIZE:
            raise DecodeError("commitment must be 32 bytes")
        if method not in METHODS:
            raise DecodeError(f"unknown verification method {method!r}")
        if region is not None:
            names.check_region(region)
        entry = SignEntry(petition, nullifier, commitment, time, method, region)
    else:
        entry = WithdrawEntry(petition, nullifier, time)
    if msgpack.packb(value, use_bin_type=True) != data:
        raise DecodeError("entry is not in canonical form")
    return entry


def _no_ext(code: int, data: bytes) -> object:
    raise DecodeError(f"extension type {code} is not allowed")


@dataclass(frozen=True, slots=True)
class PrivateRecord:
    """What a sign entry's commitment hides (spec §4.3). Never published."""

    petition: str  # petition id
    email: str  # normalised email
    name: str

    def encode(self) -> bytes:
        return encoding.encode({"petition": self.petition, "email": self.email, "name": self.name})

    @classmethod
    def decode(cls, data: bytes) -> PrivateRecord:
        doc = encoding.decode_map(data, "private record")
        if set(doc) != {"petition", "email", "name"}:
            raise DecodeError("private record must have exactly petition, email and name")
        if not all(isinstance(v, str) for v in doc.values()):
            raise DecodeError("private record fields must be strings")
        return cls(names.check_petition_id(doc["petition"]), doc["email"], doc["name"])


def commitment(salt: bytes, record: bytes) -> bytes:
    """SHA-256(context || salt || record): binds an entry to its signer (spec §4.3)."""
    if len(salt) != SALT_SIZE:
        raise LocalProtocolError("salt must be 32 bytes")
    return hashlib.sha256(COMMITMENT_CONTEXT + salt + record).digest()


# -- fast path ---------------------------------------------------------------
#
# A verifier reads every entry of every log, so it scans entries against their
# one canonical byte layout instead of decoding and re-encoding them. Because the
# encoding is canonical, each valid entry has exactly one byte string, and the
# scanner accepts exactly the bytes ``parse_entry`` accepts (tests check both
# agree). On anything else it returns None and the caller asks ``parse_entry``
# for the precise reason.

_INT = rb"([\x00-\x7f]|\xcc[\x80-\xff]|\xcd..|\xce....|\xcf........)"
_SIGN_RE = re.compile(
    rb"[\x86\x87]\xaacommitment\xc4\x20.{32}\xa6method\xa5email"
    rb"\xa9nullifier\xc4\x20(.{32})\xa8petition\xc4\x20(.{32})"
    rb"(?:\xa6region([\xa2-\xa6][A-Z0-9-]{2,6}))?\xa4time" + _INT + rb"\xa4type\xa4sign",
    re.DOTALL,
)
_WITHDRAW_RE = re.compile(
    rb"\x84\xa9nullifier\xc4\x20(.{32})\xa8petition\xc4\x20(.{32})\xa4time" + _INT
    + rb"\xa4type\xa8withdraw",
    re.DOTALL,
)
_INT_MIN = {1: 0, 2: 0x80, 3: 0x100, 5: 0x10000, 9: 0x100000000}  # shortest-form floors
_valid_regions: dict[bytes, str | None] = {}

Scanned = tuple[bool, bytes, bytes, int, str | None]  # is_sign, petition, nullifier, time, region


def _region(raw: bytes) -> str | None:
    """A fixstr-encoded region, or None if it is not a valid one (cached)."""
    text = raw[1:].decode("ascii")
    ok = len(text) == raw[0] - 0xA0 and names.REGION_RE.fullmatch(text) is not None
    region = text if ok else None
    if len(_valid_regions) < 10_000:
        _valid_regions[raw] = region
    return region


_MISSING = object()
_match_sign = _SIGN_RE.fullmatch
_match_withdraw = _WITHDRAW_RE.fullmatch
_MAX_TIME = 2**40


def scan_entry(data: bytes) -> Scanned | None:
    """Return the fields of a canonical, valid entry, or None (see parse_entry)."""
    match = _match_sign(data)
    if match is not None:
        nullifier, petition, raw_region, raw_time = match.groups()
        region: Any = None
        if (raw_region is None) != (data[0] == 0x86):
            return None  # the map header must count the fields present
        if raw_region is not None:
            region = _valid_regions.get(raw_region, _MISSING)
            if region is _MISSING:
                region = _region(raw_region)
            if region is None:
                return None
        is_sign = True
    else:
        match = _match_withdraw(data)
        if match is None:
            return None
        nullifier, petition, raw_time = match.groups()
        region = None
        is_sign = False
    width = len(raw_time)
    time = raw_time[0] if width == 1 else int.from_bytes(raw_time[1:], "big")
    if time % TIME_GRANULARITY or time >= _MAX_TIME or time < _INT_MIN[width]:
        return None
    return is_sign, petition, nullifier, time, region
