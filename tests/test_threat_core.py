"""Claims of spec/threat-model.md that the protocol core shows, without a network.

Each test names the attack it concerns. Some show that a mechanism stops an
attack; the two split-view tests also show what the reference witness policy
does *not* stop (spec §14.15), so that the threat model's statement stays true.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools

import pytest

from fedpetition.core import merkle, tiles
from fedpetition.core.documents import (
    Host,
    PetitionVersion,
    check_version_chain,
    reference_witness_policy,
)
from fedpetition.core.entries import SignEntry
from fedpetition.core.errors import DecodeError, FedPetitionError, VerificationError
from fedpetition.core.follow import LogFollower
from fedpetition.core.log import LogAppender
from fedpetition.core.logcheck import PetitionRules
from fedpetition.core.notes import Signer, add_signature_lines, open_checkpoint
from fedpetition.core.nullifiers import petition_key_pair
from fedpetition.core.receipts import check_consistency
from fedpetition.core.witness import (
    RootConflictError,
    SizeConflictError,
    Witness,
    encode_add_checkpoint,
)
from fedpetition.node.ratelimit import MAX_KEYS, RateLimiter

PETITION = "a.example/demo"
ORIGIN = f"a.example/log/{PETITION}"
NOW = 1772409600


def signer(name: str) -> Signer:
    return Signer(name, hashlib.sha256(name.encode()).digest())


def federation(count: int) -> tuple[list[Signer], list[Witness]]:
    """``count`` hosts a.example, b.example, ...; a witness run by each host but a.example."""
    signers = [signer(f"{chr(ord('a') + i)}.example") for i in range(count)]
    log_key = signers[0].verifier_key()
    witnesses = [Witness(s, {ORIGIN: log_key}) for s in signers[1:]]
    return signers, witnesses


def cosigned(witness: Witness, note: str) -> str:
    """Ask ``witness`` to cosign ``note`` (a one-entry checkpoint) as a host would:
    from size 0, then, on a 409 naming the witness's size, again from that size.
    Returns its cosignature line; raises RootConflictError if it refuses."""
    try:
        result = witness.add_checkpoint(encode_add_checkpoint(0, [], note), NOW)
    except SizeConflictError as e:
        result = witness.add_checkpoint(encode_add_checkpoint(e.current_size, [], note), NOW)
    witness.commit(result)
    return result.cosignature


VERSION = b"\x07" * 32  # the digest the entries bind to
HOUR = NOW - NOW % 3600


def one_entry_log(nullifier: bytes) -> tuple[LogAppender, dict[tiles.TileCoord, bytes]]:
    """A log holding one valid sign entry, and its entry bundles by coordinate."""
    log = LogAppender(ORIGIN)
    entry = SignEntry(VERSION, nullifier, b"\x05" * 32, HOUR).encode()
    files = log.append([entry]) + log.partial_files()
    bundles = {tiles.parse_path(p): d for p, d in files}
    return log, {c: d for c, d in bundles.items() if c.kind == "entries"}


def two_views(host: Signer) -> tuple[str, str]:
    """Two checkpoints of host a.example's log, same size, different roots."""
    shown, _ = one_entry_log(b"\x01" * 32)
    hidden, _ = one_entry_log(b"\x02" * 32)
    return shown.signed_checkpoint(host), hidden.signed_checkpoint(host)


def cosigners(note: str, lines: list[str], signers: list[Signer]) -> int:
    """How many eligible witnesses of the reference policy vouch for ``note`` (spec §7.5)."""
    hosts = tuple(Host(s.name, s.verifier_key()) for s in signers)
    log_key = signers[0].verifier_key()
    eligible = reference_witness_policy(hosts).eligible(log_key)
    return len(open_checkpoint(add_signature_lines(note, lines), log_key, eligible).cosignatures)


# --------------------------------------------------------------------------- split views


def test_threat_three_hosts_two_disjoint_quorums_cosign_a_split_view() -> None:
    """Spec §14.15: with k = 3 hosts the quorum is 1 of 2, so two honest witnesses,
    each shown one view, make both views meet the policy. Only a party that sees
    both (here witness b, shown the second view later) catches it."""
    signers, (b, c) = federation(3)
    hosts = tuple(Host(s.name, s.verifier_key()) for s in signers)
    assert reference_witness_policy(hosts).quorum == 1
    first, second = two_views(signers[0])
    assert cosigners(first, [cosigned(b, first)], signers) == 1
    assert cosigners(second, [cosigned(c, second)], signers) == 1  # both meet quorum 1
    # Detected only when someone compares: b, shown the other view, refuses and keeps
    # both notes as evidence of the fork.
    with pytest.raises(RootConflictError) as caught:
        b.add_checkpoint(encode_add_checkpoint(1, [], second), NOW)
    evidence = caught.value.evidence
    assert evidence is not None and evidence.kind == "fork"
    assert {evidence.recorded_note, evidence.offending_note} == {first, second}
    # So does a node following the log for its federated count (spec §14.16) that took
    # the first view and is then shown the second.
    rules = PetitionRules({VERSION: HOUR}, HOUR + 86400)
    follower = LogFollower(ORIGIN)
    log_key = signers[0].verifier_key()
    _, bundles = one_entry_log(b"\x01" * 32)
    assert follower.advance(open_checkpoint(first, log_key).checkpoint, bundles, rules) == 1
    with pytest.raises(VerificationError, match="split view"):
        follower.advance(open_checkpoint(second, log_key).checkpoint, {}, rules)


def test_threat_four_hosts_any_two_quorums_share_a_witness_that_refuses() -> None:
    """With k = 4 the quorum is 2 of 3: any two quorums overlap, and the shared
    witness refuses the second view, so it cannot meet the policy."""
    signers, witnesses = federation(4)
    hosts = tuple(Host(s.name, s.verifier_key()) for s in signers)
    assert reference_witness_policy(hosts).quorum == 2
    first, second = two_views(signers[0])
    b, c, _ = witnesses
    assert cosigners(first, [cosigned(b, first), cosigned(c, first)], signers) == 2
    for pair in itertools.combinations(witnesses, 2):
        lines = []
        for witness in pair:
            with contextlib.suppress(RootConflictError):  # it cosigned the first view
                lines.append(cosigned(witness, second))
        assert cosigners(second, lines, signers) < 2, [w.signer.name for w in pair]
    for witness in (b, c):
        with pytest.raises(RootConflictError):
            witness.add_checkpoint(encode_add_checkpoint(1, [], second), NOW)


# --------------------------------------------------------------------------- dropping entries


def test_threat_a_log_rewritten_after_a_receipt_fails_the_online_check() -> None:
    """A host that drops a signer's entry after giving the receipt, then grows the log
    past the receipt's size, cannot prove the new tree extends the receipt's (§8.3)."""
    entries = [f"entry {i}".encode() for i in range(5)]
    log = LogAppender(ORIGIN)
    log.append(entries)
    receipt_checkpoint = log.checkpoint()  # the signer of entry 2 holds this one
    honest = [*entries, b"entry 5", b"entry 6"]
    rewritten = [*entries[:2], *entries[3:], b"entry 5", b"entry 6", b"entry 7"]
    for later, expect_ok in ((honest, True), (rewritten, False)):
        grown = LogAppender(ORIGIN)
        grown.append(later)
        leaves = [merkle.leaf_hash(e) for e in later]
        proof = merkle.consistency_proof(5, len(later), merkle.hash_at_from_leaves(leaves))
        if expect_ok:
            check_consistency(receipt_checkpoint, grown.checkpoint(), proof)
        else:
            with pytest.raises(FedPetitionError):
                check_consistency(receipt_checkpoint, grown.checkpoint(), proof)


# --------------------------------------------------------------------------- malicious origin


def version(number: int, previous: bytes | None, oprf_key: bytes) -> PetitionVersion:
    return PetitionVersion(
        id=PETITION, version=number, previous=previous, languages=("en",),
        title={"en": "Demo"}, text={"en": f"Text {number}."}, addressee="City council",
        created=NOW + number, deadline=NOW + 86400, oprf_key=oprf_key)


def test_threat_the_origin_cannot_change_the_oprf_key_in_a_later_version() -> None:
    """Hosts check evaluations against the key in the signed versions; a new version
    carrying another key (to evaluate later hosts, or later signers, under a key
    of its choice) breaks the version chain every host and verifier checks (§3.2)."""
    _, key = petition_key_pair(b"\x01" * 32, PETITION)
    _, other = petition_key_pair(b"\x02" * 32, PETITION)
    first = version(1, None, key)
    same = version(2, first.digest, key)
    check_version_chain([first, same], [first.digest, same.digest])
    changed = version(2, first.digest, other)
    with pytest.raises(DecodeError, match="oprf_key"):
        check_version_chain([first, changed], [first.digest, changed.digest])


# --------------------------------------------------------------------------- denial of service


def test_threat_a_flood_of_new_keys_does_not_reset_another_limit() -> None:
    """A host's evaluation limit (or a client's signing limit) must survive a flood of
    requests under other keys, e.g. from many IPv6 addresses of one network."""
    limiter = RateLimiter()
    for _ in range(3):
        limiter.hit("evaluate:b.example:1", NOW)
    for i in range(MAX_KEYS):
        limiter.hit(f"sign-ip:2001:db8::{i:x}", NOW)
    assert limiter.hit("evaluate:b.example:1", NOW) == 4
