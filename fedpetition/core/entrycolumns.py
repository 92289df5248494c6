"""Scanning many entries at once into columns, for verifiers (spec §4, §11.3.8).

A verifier reads every entry of every log. Scanning them one at a time
(:func:`fedpetition.core.entries.scan_entry`) costs about a microsecond each in
CPython, more than the two hashes each entry needs. Canonical encoding gives
every ``sign`` entry whose hour is written as a 32-bit integer (every hour from
1970-01-01T19:00Z to 2106) one of five byte layouts: without a region, or with a
region of 2, 4, 5 or 6 characters. :func:`scan_columns` checks arrays of entries
against those layouts with numpy, reading the buffer as unaligned 64-bit words
at computed offsets, and extracts the fields as columns.

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

__all__ = ["EntryColumns", "scan_columns"]

Words = npt.NDArray[np.uint64]
Ints = npt.NDArray[np.int64]

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


def _windows(sample: bytes, variable: list[range]) -> list[tuple[int, np.uint64, np.uint64]]:
    """8-byte words covering every constant byte of ``sample``: (offset, value, mask)."""
    fixed = [not any(i in r for r in variable) for i in range(len(sample))]
    windows = []
    offset = 0
    while offset < len(sample):
        if not fixed[offset]:
            offset += 1
            continue
        at = min(offset, len(sample) - 8)
        mask = sum(0xFF << (8 * k) for k in range(8) if fixed[at + k])
        windows.append((at, np.uint64(int.from_bytes(sample[at:at + 8], "little") & mask),
                        np.uint64(mask)))
        offset = at + 8
    return windows


# A sign entry (spec §4.1, canonical order): map header, "commitment", 32 bytes,
# "method" "email", "nullifier", 32 bytes, "petition", 32 bytes, then for the
# 0x87 header "region" and 2 to 6 characters, then "time", the hour, "type" "sign".
_SAMPLE = SignEntry(b"\x00" * 32, b"\x00" * 32, b"\x00" * 32, 0x01020300 // 3600 * 3600).encode()
_COMMITMENT = 14  # offsets of the 32-byte fields
_NULLIFIER = 71
_PETITION = 114
_HEAD = 146  # bytes before the region or the time: the same in every layout
_TAIL = 20  # "time" 0xce, 4 bytes of hour, "type" "sign"
_TIME = -14  # from the end
assert _SAMPLE[_COMMITMENT - 12:_COMMITMENT] == b"commitment\xc4\x20"
assert _SAMPLE[_NULLIFIER - 12:_NULLIFIER] == b"\xa9nullifier\xc4\x20"
assert _SAMPLE[_PETITION - 11:_PETITION] == b"\xa8petition\xc4\x20"
assert _SAMPLE[_TIME - 6:_TIME] == b"\xa4time\xce" and len(_SAMPLE) == _HEAD + _TAIL
_HEAD_WINDOWS = _windows(_SAMPLE[:_HEAD], [  # the map header is checked on its own
    range(1), range(_COMMITMENT, _COMMITMENT + 32), range(_NULLIFIER, _NULLIFIER + 32),
    range(_PETITION, _PETITION + 32)])
_TAIL_WINDOWS = [(at - _TAIL, value, mask) for at, value, mask
                 in _windows(_SAMPLE[_HEAD:], [range(6, 10)])]
# With a region: "\xa6region" and the fixstr header of its 2 to 6 characters.
_REGION_WORD = np.uint64(int.from_bytes(b"\xa6region\x00", "little"))
_REGION_SIZES = (2, 4, 5, 6)  # spec §2.4: XX or XX-Y to XX-YYY
_PLAIN_LENGTH = _HEAD + _TAIL


def _gather(words: Words, offset: int, at: Ints) -> Words:
    """The word at ``offset`` from each of ``at`` (a view shifted, not an added array)."""
    return words[offset:][at] if offset >= 0 else words[at + offset]


def _fields(words: Words, at: Ints, offset: int) -> Words:
    """The 32 bytes at ``offset`` from each of ``at``, as rows of four words."""
    return np.stack([words[offset + 8 * k:][at] for k in range(4)], axis=1)


def scan_columns(buf: bytes, starts: Ints, ends: Ints) -> EntryColumns:
    """Scan the entries ``buf[starts[i]:ends[i]]``: the verdicts of ``scan_entry``."""
    n = len(starts)
    padded = np.frombuffer(buf + bytes(8), dtype=np.uint8)
    # words[k] is the little-endian word of bytes k..k+7: unaligned, no copy.
    words: Words = np.ndarray((len(buf) + 1,), dtype="<u8", buffer=padded.data, strides=(1,))
    lengths = ends - starts
    headers = padded[starts]
    region_size = lengths - _PLAIN_LENGTH - 8  # for the 0x87 rows
    regional = (headers == 0x87) & np.isin(region_size, _REGION_SIZES)
    rows = np.flatnonzero(((headers == 0x86) & (lengths == _PLAIN_LENGTH)) | regional)
    at, end = starts[rows], ends[rows]
    good = np.ones(len(rows), dtype=bool)
    for offset, value, mask in _HEAD_WINDOWS:
        good &= (_gather(words, offset, at) & mask) == value
    for offset, value, mask in _TAIL_WINDOWS:
        good &= (words[end + offset] & mask) == value
    time = (words[end + _TIME] & np.uint64(0xFFFFFFFF)).astype("<u4").byteswap().astype(np.int64)
    good &= (time % 3600 == 0) & (time >= _MIN_TIME)
    regions = np.zeros(n, dtype=np.int64)
    table: list[str | None] = [None]
    with_region = np.flatnonzero(regional[rows])
    if len(with_region):
        size = region_size[rows[with_region]].astype(np.uint64)
        head = _REGION_WORD | ((size + np.uint64(0xA0)) << np.uint64(56))
        good[with_region] &= _gather(words, _HEAD, at[with_region]) == head
        # The characters, with their count in the top byte: one code per region.
        raw = (_gather(words, _HEAD + 8, at[with_region]) & (
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
    rows, at = rows[good], at[good]
    ok = np.zeros(n, dtype=bool)
    ok[rows] = True
    kinds = ok.astype(np.uint8)
    nullifiers = np.zeros((n, 4), dtype=np.uint64)
    petitions = np.zeros((n, 4), dtype=np.uint64)
    times = np.zeros(n, dtype=np.int64)
    nullifiers[rows] = _fields(words, at, _NULLIFIER)
    petitions[rows] = _fields(words, at, _PETITION)
    times[rows] = time[good]
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


