"""scan_columns gives exactly the verdicts and fields of scan_entry, entry by entry."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpetition.core import entrycolumns
from fedpetition.core.entries import SignEntry, WithdrawEntry, scan_entry
from fedpetition.core.entrycolumns import scan_columns

digests = st.binary(min_size=32, max_size=32)
# Hours written in 8, 16, 32 and 64 bits, and the edges of the 32-bit layouts.
hours = st.one_of(
    st.integers(min_value=0, max_value=2**40 // 3600 - 1).map(lambda h: h * 3600),
    st.sampled_from([0, 3600, 0xFF00 // 3600 * 3600, 0x10000 // 3600 * 3600 + 3600,
                     (2**32 - 1) // 3600 * 3600, (2**32 - 1) // 3600 * 3600 + 3600]),
)
regions = st.none() | st.sampled_from(["FR", "FR-IDF", "DE-BY", "BE", "US-CA", "GB-ENG", "FR-2",
                                       "ES-M"])
sign_entries = st.builds(SignEntry, digests, digests, digests, hours, st.just("email"), regions)
entries = sign_entries | st.builds(WithdrawEntry, digests, digests, hours)


def mutate(raw: bytes, draw: st.DataObject) -> bytes:
    changed = bytearray(raw)
    kind = draw.draw(st.sampled_from(["byte", "cut", "extend", "none"]))
    if kind == "byte":
        changed[draw.draw(st.integers(0, len(changed) - 1))] = draw.draw(st.integers(0, 255))
    elif kind == "cut":
        del changed[draw.draw(st.integers(0, len(changed) - 1)):]
    elif kind == "extend":
        changed += draw.draw(st.binary(min_size=1, max_size=3))
    return bytes(changed)


def assert_agrees(raws: list[bytes]) -> None:
    buf = b"".join(len(raw).to_bytes(2, "big") + raw for raw in raws)
    sizes = np.array([len(raw) for raw in raws], dtype=np.int64)
    ends = np.cumsum(sizes + 2)
    columns = scan_columns(buf, ends - sizes, ends)
    for i, raw in enumerate(raws):
        scanned = scan_entry(raw)
        assert bool(columns.ok[i]) == (scanned is not None), raw.hex()
        if scanned is None:
            continue
        is_sign, petition, nullifier, time, region = scanned
        assert bool(columns.kinds[i]) == is_sign
        assert columns.petitions[i].tobytes() == petition
        assert columns.nullifiers[i].tobytes() == nullifier
        assert int(columns.times[i]) == time
        assert columns.region_table[columns.regions[i]] == region


@settings(max_examples=300)
@given(st.lists(entries, min_size=1, max_size=40), st.data())
def test_columns_agree_with_the_entry_scanner(items: list[SignEntry | WithdrawEntry],
                                              data: st.DataObject) -> None:
    raws = [item.encode() for item in items]
    raws += [mutate(raw, data) for raw in raws]
    assert_agrees(raws)


def test_every_byte_of_each_layout_is_checked() -> None:
    """Changing any single byte of a fast-path entry changes exactly what scan_entry says."""
    raws = []
    for region in (None, "FR", "FR-2", "FR-IDF", "GB-ENG", "ES-M"):
        entry = SignEntry(bytes(range(32)), bytes(range(1, 33)), bytes(range(2, 34)),
                          1_700_000_000 // 3600 * 3600, region=region).encode()
        for position in range(len(entry)):
            for value in {0, 0x20, 0x41, 0xA4, 0xFF, entry[position] ^ 1}:
                changed = bytearray(entry)
                changed[position] = value
                raws.append(bytes(changed))
    assert_agrees(raws)


def test_canonical_sign_entries_take_the_column_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The five layouts never fall back to scanning entries one by one."""
    def refuse(raw: bytes) -> None:
        raise AssertionError(f"fell back to scan_entry for {raw.hex()}")

    raws = [SignEntry(bytes([i]) * 32, bytes([i + 1]) * 32, bytes([i + 2]) * 32,
                      (1_700_000_000 + 3600 * i) // 3600 * 3600, region=region).encode()
            for i, region in enumerate([None, "FR", "FR-2", "ES-M", "FR-IDF", "GB-ENG"] * 3)]
    monkeypatch.setattr(entrycolumns, "scan_entry", refuse)
    buf = b"".join(len(raw).to_bytes(2, "big") + raw for raw in raws)
    sizes = np.array([len(raw) for raw in raws], dtype=np.int64)
    ends = np.cumsum(sizes + 2)
    columns = scan_columns(buf, ends - sizes, ends)
    assert columns.ok.all()
    assert [columns.region_table[r] for r in columns.regions] == [
        None, "FR", "FR-2", "ES-M", "FR-IDF", "GB-ENG"] * 3


def test_empty() -> None:
    columns = scan_columns(b"", np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert len(columns.ok) == 0


def test_short_and_empty_entries_at_the_buffer_edges() -> None:
    """Words are read only inside entries of a canonical length: nothing past the end."""
    sign = SignEntry(b"p" * 32, b"n" * 32, b"c" * 32, 1_700_000_000 // 3600 * 3600).encode()
    for raws in ([b""], [b"", b""], [b"\x86"], [b"\x86\xa4type"], [sign, b""], [b"", sign],
                 [sign[:-1]], [sign, sign[:-1]], [sign + b"\x00"]):
        assert_agrees(raws)


def test_times_written_wider_than_canonical_are_refused() -> None:
    """An hour fits the 32-bit layout's bytes when padded (0xce 00 00 0e 10): still refused."""
    raws = []
    for hour in (0, 3600, 0xFF00 // 3600 * 3600, 0x10000 // 3600 * 3600 + 3600):
        entry = SignEntry(b"p" * 32, b"n" * 32, b"c" * 32, hour, region="FR").encode()
        at = entry.index(b"\xa4time") + 5
        end = entry.index(b"\xa4type")
        for header, width in ((0xCC, 1), (0xCD, 2), (0xCE, 4), (0xCF, 8)):
            if hour < 1 << (8 * width):
                raws.append(entry[:at] + bytes([header]) + hour.to_bytes(width, "big")
                            + entry[end:])
    assert_agrees(raws)
    # Only the shortest forms pass: 3600 (0xcd), 65,520 (0xcd) and 68,400 (0xce); hour 0
    # is a positive fixint, so none of its four forms here is canonical.
    assert sum(scan_entry(raw) is not None for raw in raws) == 3
