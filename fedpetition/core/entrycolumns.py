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
from .entries import NULLIFIER_SIZE, SignEntry, scan_entry

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


@dataclass(frozen=True)
class _Layout:
    """One byte layout of a sign entry: its map header, length and constant bytes."""

    header: int
    length: int
    windows: tuple[tuple[int, np.uint64, np.uint64], ...]  # 8-byte words: (offset, value,
    # mask) where mask marks the constant bytes
    region: int  # offset of the region's characters, or 0
    region_size: int


def _layout(region_size: int) -> _Layout:
    """Derived by encoding two entries that differ in every variable byte: the bytes
    where they agree are the layout's constant bytes."""
    one = SignEntry(b"\x00" * 32, b"\x00" * 32, b"\x00" * 32, 0x01020300 // 3600 * 3600,
                    region=_sample_region("AA", "A", region_size)).encode()
    two = SignEntry(b"\xff" * 32, b"\xff" * 32, b"\xff" * 32, 0xFEDCBA98 // 3600 * 3600,
                    region=_sample_region("ZZ", "9", region_size)).encode()
    fixed = [a == b for a, b in zip(one, two, strict=True)]
    windows = []
    offset = 0
    while offset < len(one):
        if not fixed[offset]:
            offset += 1
            continue
        at = min(offset, len(one) - 8)
        mask = sum(0xFF << (8 * k) for k in range(8) if fixed[at + k])
        windows.append((at, np.uint64(int.from_bytes(one[at:at + 8], "little") & mask),
                        np.uint64(mask)))
        offset = at + 8
    # The variable fields sit where _NULLIFIER, _PETITION and _TIME say.
    assert one[_NULLIFIER - 12:_NULLIFIER] == b"\xa9nullifier\xc4\x20"
    assert one[_PETITION - 11:_PETITION] == b"\xa8petition\xc4\x20"
    assert one[len(one) + _TIME - 6:len(one) + _TIME] == b"\xa4time\xce"
    region_at = one.find(b"\xa6region") + 8 if region_size else 0
    return _Layout(one[0], len(one), tuple(windows), region_at, region_size)


def _sample_region(country: str, character: str, size: int) -> str | None:
    """A valid region of ``size`` characters (spec §2.4: XX or XX-YYY), or None for 0."""
    return None if size == 0 else country + ("-" + character * (size - 3) if size > 2 else "")


_NULLIFIER = 71  # offsets in a sign entry; _TIME from its end
_PETITION = 114
_TIME = -14
_LAYOUTS = tuple(_layout(size) for size in (0, 2, 4, 5, 6))


def _fields(words: Words, at: Ints) -> Words:
    """The 32 bytes at each offset, as rows of four words."""
    return np.stack([words[at + 8 * k] for k in range(4)], axis=1)


def scan_columns(buf: bytes, starts: Ints, ends: Ints) -> EntryColumns:
    """Scan the entries ``buf[starts[i]:ends[i]]``: the verdicts of ``scan_entry``."""
    n = len(starts)
    padded = np.frombuffer(buf + bytes(8), dtype=np.uint8)
    # words[k] is the little-endian word of bytes k..k+7: unaligned, no copy.
    words: Words = np.ndarray((len(buf) + 1,), dtype="<u8", buffer=padded.data, strides=(1,))
    lengths = ends - starts
    headers = padded[starts]
    ok = np.zeros(n, dtype=bool)
    kinds = np.zeros(n, dtype=np.uint8)
    nullifiers = np.zeros((n, 4), dtype=np.uint64)
    petitions = np.zeros((n, 4), dtype=np.uint64)
    times = np.zeros(n, dtype=np.int64)
    regions = np.zeros(n, dtype=np.int64)
    table: list[str | None] = [None]
    for layout in _LAYOUTS:
        rows = np.flatnonzero((lengths == layout.length) & (headers == layout.header))
        if not len(rows):
            continue
        at = starts[rows]
        good = np.ones(len(rows), dtype=bool)
        for offset, value, mask in layout.windows:
            good &= (words[at + offset] & mask) == value
        time = (words[at + (layout.length + _TIME)] & np.uint64(0xFFFFFFFF)).astype("<u4")
        time = time.byteswap().astype(np.int64)
        good &= (time % 3600 == 0) & (time >= _MIN_TIME)
        if layout.region_size:
            raw = words[at + layout.region] & np.uint64((1 << 8 * layout.region_size) - 1)
            codes, inverse = np.unique(raw, return_inverse=True)
            index = np.zeros(len(codes), dtype=np.int64)
            for k, code in enumerate(codes.tolist()):
                region = _region(int(code).to_bytes(layout.region_size, "little"))
                if region is not None:
                    index[k] = _index(table, region)
            region_of = index[inverse.reshape(-1)]
            good &= region_of > 0
            regions[rows[good]] = region_of[good]
        rows, at = rows[good], at[good]
        ok[rows] = True
        kinds[rows] = 1
        nullifiers[rows] = _fields(words, at + _NULLIFIER)
        petitions[rows] = _fields(words, at + _PETITION)
        times[rows] = time[good]
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


assert NULLIFIER_SIZE == 32
