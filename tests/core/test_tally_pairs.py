"""The duplicates each pair of nodes shares (issue 5): attributed to the log that counted."""

from __future__ import annotations

from fedpetition.core.tally import LogTally, TallyBuilder

VERSION = b"\x01" * 32


def log_of(origin: str, nullifiers: list[bytes], withdrawn: tuple[bytes, ...] = ()) -> LogTally:
    tally = LogTally(origin)
    index = 0
    for nullifier in nullifiers:
        tally.apply(index, True, nullifier, None, VERSION)
        index += 1
    for nullifier in withdrawn:
        tally.apply(index, False, nullifier, None, VERSION)
        index += 1
    return tally


def n(i: int) -> bytes:
    return i.to_bytes(32, "big")


def test_pairs_share_exactly_their_duplicates() -> None:
    builder = TallyBuilder({VERSION: 1})
    builder.add_log("a", log_of("a", [n(1), n(2), n(3), n(4)]))
    builder.add_log("b", log_of("b", [n(2), n(3), n(5)]))
    # n(3) is in all three: counted on a, shared with b and with c; n(5) first on b.
    builder.add_log("c", log_of("c", [n(3), n(5), n(6), n(4)], withdrawn=(n(4),)))
    tally = builder.finish()
    assert tally.total == 6
    assert dict(tally.shared) == {("a", "b"): 2, ("a", "c"): 1, ("b", "c"): 1}
    assert tally.duplicates == sum(tally.shared.values()) == 4
    assert [c.duplicates for c in tally.logs] == [0, 2, 2]
