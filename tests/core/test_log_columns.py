"""The verifier's columnar log-rules and tally give what entry-by-entry application gives.

LogTally applies entries one at a time, as the spec words the rules; check_log_rules
and TallyBuilder decide them for whole arrays. Nullifiers here are drawn from small
pools built to collide on their first bytes, so that the exact regrouping of rows
whose sort keys tie is exercised, not only the common case.
"""

from __future__ import annotations

from collections import Counter
from unittest.mock import patch

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fedpetition.core import tally
from fedpetition.core.errors import VerificationError
from fedpetition.core.tally import (
    SIGNED,
    LogTally,
    Rows,
    TallyBuilder,
    as_words,
    check_log_rules,
    group_rows,
)

VERSIONS = {b"\x01" * 32: 1, b"\x02" * 32: 2}
REGIONS = [None, "FR", "DE-BY"]
TABLE = [(version, region) for version in VERSIONS for region in REGIONS]

# 32-byte values that tie on their first word, on all but its low bits, or nowhere.
nullifiers = st.one_of(
    st.integers(0, 7).map(lambda i: bytes([i]) + bytes(31)),
    st.integers(0, 3).map(lambda i: bytes(8) + bytes([i]) + bytes(23)),
    st.integers(0, 3).map(lambda i: bytes(31) + bytes([i])),
    st.binary(min_size=32, max_size=32),
)
entries = st.tuples(st.booleans(), nullifiers, st.integers(0, len(TABLE) - 1))
logs = st.lists(entries, max_size=30)


def apply_one_by_one(entries: list[tuple[bool, bytes, int]]) -> LogTally | VerificationError:
    tally = LogTally("log")
    for index, (is_sign, nullifier, value) in enumerate(entries):
        version, region = TABLE[value]
        try:
            tally.apply(index, is_sign, nullifier, region, version)
        except VerificationError as e:
            return e
    return tally


def columns(entries: list[tuple[bool, bytes, int]]):  # type: ignore[no-untyped-def]
    kinds = np.array([is_sign for is_sign, _, _ in entries], dtype=np.uint8)
    words = Rows([as_words(b"".join(nullifier for _, nullifier, _ in entries))])
    values = np.array([value for _, _, value in entries], dtype=np.int32)
    return kinds, words, values


@settings(max_examples=400)
@given(logs)
def test_log_rules_match_entry_by_entry(entries: list[tuple[bool, bytes, int]]) -> None:
    expected = apply_one_by_one(entries)
    try:
        got = check_log_rules("log", 0, *columns(entries), TABLE)
    except VerificationError as e:
        assert isinstance(expected, VerificationError)
        assert (e.step, e.reason, e.index) == (expected.step, expected.reason, expected.index)
        return
    assert isinstance(expected, LogTally), expected
    assert (got.signs, got.withdrawals, got.withdrawn) == (
        expected.signs, expected.withdrawals, expected.withdrawn)
    assert got.nullifiers == expected.nullifiers
    signed = {(row.tobytes(), TABLE[value]) for row, value
              in zip(got.signed.nullifiers.array(), got.signed.values, strict=True)}
    assert signed == {(n, (digest, region)) for n, (state, region, digest)
                      in expected.states().items() if state == SIGNED}


@given(st.lists(nullifiers, max_size=60), st.sampled_from([1, 3, 1 << 18]))
def test_group_rows_is_an_exact_stable_grouping(values: list[bytes], block: int) -> None:
    # Split in uneven parts, as a log's chunks are, and work in blocks of several sizes.
    parts = [as_words(b"".join(values[i:i + 7])) for i in range(0, len(values), 7)]
    with patch.object(tally, "_BLOCK", block):
        grouping = group_rows(Rows(parts))
    order, starts = grouping.order(np.arange(len(values))), grouping.starts
    ordered = [values[i] for i in order]
    groups: list[list[int]] = []
    for position, index in enumerate(order.tolist()):
        if starts[position]:
            groups.append([])
        groups[-1].append(index)
    assert sorted(i for g in groups for i in g) == list(range(len(values)))
    for group in groups:
        assert len({values[i] for i in group}) == 1
        assert group == sorted(group)  # stable: log order within a group
    assert len(groups) == len(set(values)) == len(set(ordered))


@settings(max_examples=300)
@given(st.lists(logs, min_size=1, max_size=4), st.sampled_from([None, 0, 1, 1000, -1]))
@example([[(True, b"\x05" * 32, 0)], [(True, b"\x09" * 32, 1), (True, b"\x05" * 32, 2)]], 0)
def test_tally_matches_a_reference(federation: list[list[tuple[bool, bytes, int]]],
                                   extra: int | None) -> None:
    """With or without the number of rows announced (``extra`` rows more than the entries,
    or one fewer: then the builder must notice and sort everything at the end)."""
    entries = sum(len(entries) for entries in federation)
    builder = TallyBuilder(VERSIONS, rows=None if extra is None else max(0, entries + extra))
    counted: dict[bytes, tuple[str, tuple[bytes, str | None]]] = {}
    shared: Counter[tuple[str, str]] = Counter()
    hosts = []
    for i, entries in enumerate(federation):
        tally = apply_one_by_one(entries)
        if isinstance(tally, VerificationError):
            continue
        host = f"host-{i}"
        hosts.append(host)
        # Alternate the two implementations: the tally takes either.
        builder.add_log(host, tally if i % 2 else check_log_rules(
            f"log-{i}", 0, *columns(entries), TABLE))
        for nullifier, (state, region, digest) in tally.states().items():
            if state != SIGNED:
                continue
            if nullifier in counted:
                shared[(counted[nullifier][0], host)] += 1
            else:
                counted[nullifier] = (host, (digest, region))
    result = builder.finish()
    assert result.total == len(counted)
    assert result.shared == shared
    assert result.duplicates == sum(shared.values())
    assert result.regions == Counter(r for _, (_, r) in counted.values() if r is not None)
    assert result.no_region == sum(1 for _, (_, r) in counted.values() if r is None)
    assert result.versions == Counter(VERSIONS[d] for _, (d, _) in counted.values())
    assert [c.host for c in result.logs] == hosts
