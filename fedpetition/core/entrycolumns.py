"""Scanning many entries at once into columns, for verifiers (spec §4, §11.3.8).

A verifier reads every entry of every log. Scanning them one at a time
(:func:`fedpetition.core.entries.scan_entry`) costs about a microsecond each in
CPython, more than the two hashes each entry needs. Canonical encoding gives
every ``sign`` entry whose hour is written as a 32-bit integer (every hour from
1970-01-01T19:00Z to 2106) one of five byte layouts: without a region, or with a
region of 2, 4, 5 or 6 characters. :func:`scan_columns` checks arrays of entries
against those layouts with numpy: it copies the bytes every layout shares (the
first 146 and the last 20 of an entry) as rows of 64-bit words, compares their
constant bytes under a mask, and extracts the fields as columns.

An entry of any other shape (a ``withdraw``, an unusual time, anything
malformed) goes to :func:`scan_entry`, so the verdicts and fields are exactly
those of scanning each entry alone; tests compare the two on valid and mutated
entries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from . import names
from .entries import SignEntry, scan_entry
from .tally import Ints, Words

__all__ = ["EntryColumns", "scan_columns"]

_MIN_TIME = 0x10000  # an hour below this is written in fewer than 32 bits


@dataclass
class EntryColumns:
    """The fields of ``n`` scanned entries, one row each.

    ``ok[i]`` is False for an entry ``scan_entry`` refuses; its other fields are
    then zero. ``nullifiers`` and ``petitions`` hold each 32-byte value as four
    little-endian 64-bit words (``.tobytes()`` gives the bytes back).
    ``regions`` indexes ``region_table``, whose first item is "no region".
    """

    ok: npt.NDArray[np.bool_]
    kinds: npt.NDArray[np.uint8]  # 1 sign, 0 withdraw
    nullifiers: Words  # (n, 4)
    petitions: Words  # (n, 4)
    times: Ints
    regions: Ints
    region_table: list[str | None]


def _pattern(sample: bytes, width: int, variable: list[range]) -> tuple[Words, Words]:
    """The constant bytes of ``sample`` (the rest zero, up to ``width``) and their mask,
    as little-endian words: a row matches if ``row & mask == value``."""
    mask = bytes(0 if i >= len(sample) or any(i in r for r in variable) else 0xFF
                 for i in range(width))
    value = bytes(b & m for b, m in zip(sample.ljust(width, b"\x00"), mask, strict=True))
    return np.frombuffer(value, dtype="<u8"), np.frombuffer(mask, dtype="<u8")


# A sign entry (spec §4.1, canonical order): map header, "commitment", 32 bytes,
# "method" "email", "nullifier", 32 bytes, "petition", 32 bytes, then for the
# 0x87 header "region" and 2 to 6 characters, then "time", the hour, "type" "sign".
_SAMPLE = SignEntry(b"\x00" * 32, b"\x00" * 32, b"\x00" * 32, 0x01020300 // 3600 * 3600).encode()
_COMMITMENT = 14  # offsets of the 32-byte fields
_NULLIFIER = 71
_PETITION = 114
_HEAD = 146  # bytes before the region or the time: the same in every layout
_TAIL = 20  # "time" 0xce, 4 bytes of hour, "type" "sign"
_TIME = 6  # offset of the hour in the tail
assert _SAMPLE[_COMMITMENT - 12:_COMMITMENT] == b"commitment\xc4\x20"
assert _SAMPLE[_NULLIFIER - 12:_NULLIFIER] == b"\xa9nullifier\xc4\x20"
assert _SAMPLE[_PETITION - 11:_PETITION] == b"\xa8petition\xc4\x20"
assert _SAMPLE[_HEAD:_HEAD + _TIME] == b"\xa4time\xce" and len(_SAMPLE) == _HEAD + _TAIL
# Each row of a canonical length is read as whole words: its first _HEAD bytes rounded
# up to _HEAD_READ (every such entry is longer), and its last _TAIL_READ bytes (the tail
# and the 4 bytes before it, which the mask leaves out).
_HEAD_READ = 152
_TAIL_READ = 24
_HEAD_VALUE, _HEAD_MASK = _pattern(_SAMPLE[:_HEAD], _HEAD_READ, [  # the map header: apart
    range(1), range(_COMMITMENT, _COMMITMENT + 32), range(_NULLIFIER, _NULLIFIER + 32),
    range(_PETITION, _PETITION + 32)])
_TAIL_VALUE, _TAIL_MASK = _pattern(bytes(4) + _SAMPLE[_HEAD:], _TAIL_READ, [
    range(4), range(4 + _TIME, 8 + _TIME)])
# With a region: "\xa6region" and the fixstr header of its 2 to 6 characters.
_REGION_WORD = np.uint64(int.from_bytes(b"\xa6region\x00", "little"))
_REGION_SIZES = (2, 4, 5, 6)  # spec §2.4: XX or XX-Y to XX-YYY (so 2 to 6, not 3)
_PLAIN_LENGTH = _HEAD + _TAIL


def _rows(buf: bytes, at: Ints, width: int) -> Words:
    """(len(at), width / 8): the ``width`` bytes from each of ``at``, copied, as words.

    ``buf`` is viewed as overlapping items of ``width`` bytes, one starting at each
    byte: indexing copies whole items, several times faster in numpy than gathering
    unaligned words one at a time.
    """
    count = max(len(buf) - width + 1, 0)
    items = np.ndarray((count,), dtype=f"V{width}", buffer=buf, strides=(1,))
    return items[at].view("<u8").reshape(len(at), width // 8)


def _matches(rows: Words, value: Words, mask: Words) -> npt.NDArray[np.bool_]:
    """Which rows hold ``value`` wherever ``mask`` is set (column by column: numpy
    is slow to broadcast along rows of a few words)."""
    good = np.ones(len(rows), dtype=bool)
    for k in np.flatnonzero(mask).tolist():
        good &= (rows[:, k] & mask[k]) == value[k]
    return good


def _fields(buf: bytes, at: Ints, n: int, rows: Ints) -> Words:
    """(n, 4): for each of ``rows``, the 32 bytes at its ``at`` as four little-endian
    words; other rows zero."""
    values = _rows(buf, at, 32)
    if len(rows) == n:  # rows are distinct indices below n: all of them
        return values
    out = np.zeros((n, 4), dtype=np.uint64)
    out[rows] = values
    return out


def scan_columns(buf: bytes, starts: Ints, ends: Ints) -> EntryColumns:
    """Scan the entries ``buf[starts[i]:ends[i]]``: the verdicts of ``scan_entry``."""
    n = len(starts)
    data = np.frombuffer(buf, dtype=np.uint8)
    lengths = ends - starts
    # An empty last entry starts at len(buf): its length alone rules it out.
    headers = data[np.minimum(starts, len(buf) - 1)] if len(buf) else np.zeros(n, np.uint8)
    region_size = lengths - _PLAIN_LENGTH - 8  # for the 0x87 rows
    regional = (headers == 0x87) & (region_size >= min(_REGION_SIZES)) & (
        region_size <= max(_REGION_SIZES)) & (region_size != 3)
    rows = np.flatnonzero(((headers == 0x86) & (lengths == _PLAIN_LENGTH)) | regional)
    at, end = starts[rows], ends[rows]
    tails = _rows(buf, end - _TAIL_READ, _TAIL_READ)
    good = (_matches(_rows(buf, at, _HEAD_READ), _HEAD_VALUE, _HEAD_MASK)
            & _matches(tails, _TAIL_VALUE, _TAIL_MASK))
    hour = _TAIL_READ - _TAIL + _TIME
    time = tails.view(np.uint8)[:, hour:hour + 4].copy().view(">u4")[:, 0].astype(np.int64)
    good &= (time % 3600 == 0) & (time >= _MIN_TIME)
    regions = np.zeros(n, dtype=np.int64)
    table: list[str | None] = [None]
    with_region = np.flatnonzero(regional[rows])
    if len(with_region):
        # The two words after the head: "region" with its header, then the characters.
        region_at = at[with_region] + _HEAD
        words = _rows(buf, region_at, 16)
        size = region_size[rows[with_region]].astype(np.uint64)
        head = _REGION_WORD | ((size + np.uint64(0xA0)) << np.uint64(56))
        good[with_region] &= words[:, 0] == head
        # The characters, with their count in the top byte: one code per region.
        raw = (words[:, 1] & (
            (np.uint64(1) << (np.uint64(8) * size)) - np.uint64(1))) | (size << np.uint64(56))
        codes, inverse = np.unique(raw, return_inverse=True)
        index = np.zeros(len(codes), dtype=np.int64)
        for k, code in enumerate(codes.tolist()):
            region = _region(int(code).to_bytes(8, "little")[:code >> 56])
            if region is not None:
                index[k] = _index(table, region)
        region_of = index[inverse.reshape(-1)]
        good[with_region] &= region_of > 0
        regions[rows[with_region]] = region_of
    kept = rows[good]
    ok = np.zeros(n, dtype=bool)
    ok[kept] = True
    kinds = ok.astype(np.uint8)
    nullifiers = _fields(buf, at[good] + _NULLIFIER, n, kept)
    petitions = _fields(buf, at[good] + _PETITION, n, kept)
    times = np.zeros(n, dtype=np.int64)
    times[kept] = time[good]
    regions[~ok] = 0
    for i in np.flatnonzero(~ok).tolist():
        scanned = scan_entry(buf[starts[i]:ends[i]])
        if scanned is None:
            continue
        is_sign, petition, nullifier, time_, region_ = scanned
        ok[i] = True
        kinds[i] = is_sign
        nullifiers[i] = np.frombuffer(nullifier, dtype="<u8")
        petitions[i] = np.frombuffer(petition, dtype="<u8")
        times[i] = time_
        regions[i] = 0 if region_ is None else _index(table, region_)
    return EntryColumns(ok, kinds, nullifiers, petitions, times, regions, table)


def _index(table: list[str | None], region: str) -> int:
    try:
        return table.index(region)
    except ValueError:
        table.append(region)
        return len(table) - 1


def _region(raw: bytes) -> str | None:
    """The region these characters spell, or None if it is not a valid one."""
    try:
        region = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    return region if names.REGION_RE.fullmatch(region) else None


