"""Tests for fedpetition.core.witness: the tlog-witness add-checkpoint state machine.

Spec: c2sp.org/tlog-witness (C2SP/C2SP tlog-witness.md at
055270b5928827a49ee84620903e141c2e97d79f), §add-checkpoint. The example request
body below is that section's example, used for framing only (its keys are not
published).
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpetition.core import merkle
from fedpetition.core.errors import DecodeError, LocalProtocolError, RemoteProtocolError
from fedpetition.core.log import LogAppender
from fedpetition.core.notes import (
    SIG_TYPE_COSIGNATURE_V1,
    Checkpoint,
    Signer,
    add_signature_lines,
    open_checkpoint,
    sign_checkpoint,
)
from fedpetition.core.witness import (
    CONFLICT_CONTENT_TYPE,
    MAX_PROOF_LINES,
    MAX_REQUEST_BYTES,
    AddCheckpointRequest,
    InconsistentProofError,
    LogRecord,
    LogSignatureError,
    OldSizeTooLargeError,
    RootConflictError,
    SizeConflictError,
    UnknownLogError,
    Witness,
    WitnessResult,
    decode_add_checkpoint,
    encode_add_checkpoint,
)

SETTINGS = settings(max_examples=40, deadline=None, database=None)
ORIGIN = "a.example/log/a.example/demo"
NOW = 1772409600

LOG_SIGNER = Signer("a.example", hashlib.sha256(b"log a").digest())
OTHER_SIGNER = Signer("a.example", hashlib.sha256(b"impostor").digest())
WITNESS_SIGNER = Signer("w.example", hashlib.sha256(b"witness w").digest())
LOG_KEY = LOG_SIGNER.verifier_key()
WITNESS_VKEY = WITNESS_SIGNER.verifier_key(SIG_TYPE_COSIGNATURE_V1)

SPEC_EXAMPLE = (
    "old 20852014\n"
    "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
    "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n"
    "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n"
    "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n"
    "\n"
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5"
    "/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "\u2014 example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks"
    "+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n"
).encode()


class Log:
    """A real log (LogAppender) plus the leaf hashes to build proofs."""

    def __init__(self, origin: str = ORIGIN, signer: Signer = LOG_SIGNER) -> None:
        self.appender = LogAppender(origin)
        self.signer = signer
        self.leaves: list[bytes] = []

    def grow(self, n: int) -> None:
        start = len(self.leaves)
        entries = [f"entry {i}".encode() for i in range(start, start + n)]
        self.appender.append(entries)
        self.leaves.extend(merkle.leaf_hash(e) for e in entries)

    def note(self) -> str:
        return self.appender.signed_checkpoint(self.signer)

    def proof(self, old: int) -> list[bytes]:
        new = len(self.leaves)
        if old == 0 or old == new:
            return []
        return merkle.consistency_proof(old, new, merkle.hash_at_from_leaves(self.leaves))

    def request(self, old: int) -> bytes:
        return encode_add_checkpoint(old, self.proof(old), self.note())


def new_witness(state: dict[str, LogRecord] | None = None) -> Witness:
    return Witness(WITNESS_SIGNER, {ORIGIN: LOG_KEY}, state)


def accept(w: Witness, body: bytes, now: int = NOW) -> WitnessResult:
    result = w.add_checkpoint(body, now)
    w.commit(result)
    return result


def check_cosigned(result: WitnessResult, note: str, now: int = NOW) -> None:
    assert result.cosignature.endswith("\n")
    assert result.cosignature.count("\n") == 1
    opened = open_checkpoint(
        add_signature_lines(note, [result.cosignature]), LOG_KEY, cosigners=[WITNESS_VKEY]
    )
    assert opened.cosignatures == ((WITNESS_VKEY, now),)
    assert opened.checkpoint == result.checkpoint


def status_of(w: Witness, body: bytes) -> int:
    with pytest.raises(RemoteProtocolError) as info:
        w.add_checkpoint(body, NOW)
    return info.value.status


# --------------------------------------------------------------------------- encoding


def test_spec_example_parses_and_round_trips() -> None:
    req = decode_add_checkpoint(SPEC_EXAMPLE)
    assert req.old_size == 20852014
    assert len(req.proof) == 4
    assert all(len(h) == 32 for h in req.proof)
    assert req.checkpoint.startswith("example.com/behind-the-sofa\n20852163\n")
    assert req.encode() == SPEC_EXAMPLE


def test_encode_layout() -> None:
    h = bytes(range(32))
    body = encode_add_checkpoint(5, [h], "note\n\n\u2014 x AAAAAAA=\n")
    b64 = base64.b64encode(h).decode()
    assert body == f"old 5\n{b64}\n\nnote\n\n\u2014 x AAAAAAA=\n".encode()
    assert encode_add_checkpoint(0, [], "n\n") == b"old 0\n\nn\n"


@given(
    old=st.integers(0, 2**63 - 1),
    proof=st.lists(st.binary(min_size=32, max_size=32), max_size=MAX_PROOF_LINES),
    note=st.text(min_size=1, max_size=200),
)
@SETTINGS
def test_round_trip(old: int, proof: list[bytes], note: str) -> None:
    try:
        note.encode("utf-8")
    except UnicodeEncodeError:
        return
    req = AddCheckpointRequest(old, tuple(proof), note)
    assert decode_add_checkpoint(req.encode()) == req


H = base64.b64encode(b"\x01" * 32).decode()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"old 1",  # no newline
        b"new 1\n\nx\n",
        b"old\n\nx\n",
        b"old 01\n\nx\n",  # leading zero
        b"old -1\n\nx\n",
        b"old +1\n\nx\n",
        b"old  1\n\nx\n",
        b"old 1 \n\nx\n",
        b"old 9223372036854775808\n\nx\n",  # 2^63
        b"old 12345678901234567890\n\nx\n",  # 20 digits
        f"old 1\n{H}\n".encode(),  # no blank line
        f"old 1\n{H}\nx\n".encode(),  # no blank line: "x" is not a hash
        f"old 1\n{H}".encode(),
        f"old 1\n{H}\n\n".encode(),  # no checkpoint
        b"old 1\n!!!!\n\nx\n",  # bad base64
        b"old 1\n" + base64.b64encode(b"\x01" * 31) + b"\n\nx\n",  # 31-byte hash
        b"old 1\n" + base64.b64encode(b"\x01" * 33) + b"\n\nx\n",  # 33-byte hash
        b"old 1\n" + base64.b64encode(b"\x01" * 32).rstrip(b"=") + b"\n\nx\n",  # no padding
        b"old 1\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQF=\n\nx\n",  # non-canonical bits
        f"old 1\n {H}\n\nx\n".encode(),
        f"old 1\r\n{H}\r\n\r\nx\n".encode(),
        b"old 1\n\n\xff\n",  # not UTF-8
        ("old 1\n" + f"{H}\n" * (MAX_PROOF_LINES + 1) + "\nx\n").encode(),
        b"old 1\n\n" + b"x" * MAX_REQUEST_BYTES,
    ],
)
def test_decode_rejects(body: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        decode_add_checkpoint(body)
    assert info.value.status == 400


def test_decode_max_proof_lines() -> None:
    body = ("old 1\n" + f"{H}\n" * MAX_PROOF_LINES + "\nx\n").encode()
    assert len(decode_add_checkpoint(body).proof) == MAX_PROOF_LINES


def test_encode_refuses_invalid() -> None:
    with pytest.raises(LocalProtocolError):
        encode_add_checkpoint(-1, [], "x\n")
    with pytest.raises(LocalProtocolError):
        encode_add_checkpoint(True, [], "x\n")
    with pytest.raises(LocalProtocolError):
        encode_add_checkpoint(1, [b"\x00" * 31], "x\n")
    with pytest.raises(LocalProtocolError):
        encode_add_checkpoint(1, [b"\x00" * 32] * (MAX_PROOF_LINES + 1), "x\n")
    with pytest.raises(LocalProtocolError):
        encode_add_checkpoint(1, [], "x" * MAX_REQUEST_BYTES)


# --------------------------------------------------------------------------- witnessing


def test_witness_growing_log() -> None:
    log, w = Log(), new_witness()
    old = 0
    for i, n in enumerate([1, 0, 3, 4, 8, 1, 300, 0, 17]):
        log.grow(n)
        note = log.note()
        result = accept(w, encode_add_checkpoint(old, log.proof(old), note), NOW + i)
        check_cosigned(result, note, NOW + i)
        assert result.origin == ORIGIN
        assert result.record == LogRecord(len(log.leaves), merkle.root(log.leaves), note)
        assert w.record(ORIGIN) == result.record
        old = len(log.leaves)


def test_new_log_at_size_zero() -> None:
    log, w = Log(), new_witness()
    result = accept(w, log.request(0))
    check_cosigned(result, log.note())
    assert result.previous is None
    assert result.record.size == 0 and result.record.root_hash == merkle.EMPTY_ROOT


def test_resume_from_persisted_state() -> None:
    log, w = Log(), new_witness()
    log.grow(5)
    accept(w, log.request(0))
    w2 = new_witness(w.state())
    log.grow(6)
    check_cosigned(accept(w2, log.request(5)), log.note())


def test_same_checkpoint_again_is_cosigned() -> None:
    log, w = Log(), new_witness()
    log.grow(7)
    accept(w, log.request(0))
    result = accept(w, log.request(7), NOW + 60)
    check_cosigned(result, log.note(), NOW + 60)


def test_unknown_origin_404() -> None:
    other = Log("b.example/log/a.example/demo")
    other.grow(2)
    w = new_witness()
    with pytest.raises(UnknownLogError) as info:
        w.add_checkpoint(other.request(0), NOW)
    assert info.value.status == 404


def test_bad_signature_403() -> None:
    log, w = Log(signer=OTHER_SIGNER), new_witness()  # same name, other key
    log.grow(3)
    with pytest.raises(LogSignatureError) as info:
        w.add_checkpoint(log.request(0), NOW)
    assert info.value.status == 403
    # A tampered signature by the log's own key.
    good = Log()
    good.grow(3)
    note = good.note()
    sig = note.rsplit(" ", 1)[1]
    tampered = note[: -len(sig)] + ("B" if sig[0] == "A" else "A") + sig[1:]
    assert status_of(w, encode_add_checkpoint(0, [], tampered)) == 403


def test_unknown_signatures_ignored() -> None:
    log, w = Log(), new_witness()
    log.grow(3)
    stranger = Signer("x.example", hashlib.sha256(b"x").digest())
    extra = sign_checkpoint(log.appender.checkpoint(), stranger).split("\n\n")[1]
    note = add_signature_lines(log.note(), [extra])
    result = accept(w, encode_add_checkpoint(0, [], note))
    check_cosigned(result, note)


def test_malformed_note_400() -> None:
    w = new_witness()
    assert status_of(w, b"old 0\n\nnot a checkpoint\n") == 400
    log = Log()
    log.grow(1)
    unsigned = log.appender.checkpoint().body()
    assert status_of(w, encode_add_checkpoint(0, [], unsigned)) == 400


def test_extension_lines_400_unless_allowed() -> None:
    cp = Checkpoint(ORIGIN, 0, merkle.EMPTY_ROOT, ("ext",))
    body = encode_add_checkpoint(0, [], sign_checkpoint(cp, LOG_SIGNER))
    assert status_of(new_witness(), body) == 400
    w = Witness(WITNESS_SIGNER, {ORIGIN: LOG_KEY}, allow_extensions=True)
    assert w.add_checkpoint(body, NOW).checkpoint == cp


def test_old_size_above_checkpoint_400() -> None:
    log, w = Log(), new_witness()
    log.grow(4)
    accept(w, log.request(0))
    with pytest.raises(OldSizeTooLargeError) as info:
        w.add_checkpoint(encode_add_checkpoint(5, [], log.note()), NOW)
    assert info.value.status == 400


def test_old_size_mismatch_409_with_size() -> None:
    log, w = Log(), new_witness()
    log.grow(4)
    accept(w, log.request(0))
    log.grow(4)
    for old in (0, 2, 5):
        with pytest.raises(SizeConflictError) as info:
            w.add_checkpoint(log.request(old), NOW)
        assert info.value.status == 409
        assert info.value.current_size == 4
        assert info.value.body() == b"4\n"
        assert info.value.content_type == CONFLICT_CONTENT_TYPE == "text/x.tlog.size"
    # A new log: the recorded size is zero.
    fresh = new_witness()
    with pytest.raises(SizeConflictError) as info:
        fresh.add_checkpoint(log.request(4), NOW)
    assert info.value.body() == b"0\n"


def test_rollback_refused() -> None:
    log, w = Log(), new_witness()
    log.grow(3)
    small = log.note()
    log.grow(5)
    accept(w, log.request(0))
    # Honest old size: the smaller checkpoint is below it (400).
    assert status_of(w, encode_add_checkpoint(8, [], small)) == 400
    # Lying old size: conflict (409).
    assert status_of(w, encode_add_checkpoint(3, [], small)) == 409
    record = w.record(ORIGIN)
    assert record is not None and record.size == 8


def test_invalid_proof_422_with_evidence() -> None:
    log, w = Log(), new_witness()
    log.grow(5)
    first = accept(w, log.request(0))
    log.grow(6)
    proof = log.proof(5)
    bad = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
    body = encode_add_checkpoint(5, bad, log.note())
    with pytest.raises(InconsistentProofError) as info:
        w.add_checkpoint(body, NOW)
    assert info.value.status == 422
    ev = info.value.evidence
    assert ev is not None and ev.kind == "inconsistent"
    assert ev.recorded_note == first.record.note
    assert ev.offending_note == log.note()
    assert ev.proof == tuple(bad)
    # Wrong proof lengths and a proof from size zero are 422 too.
    assert status_of(w, encode_add_checkpoint(5, proof[:-1], log.note())) == 422
    assert status_of(w, encode_add_checkpoint(5, [*proof, proof[0]], log.note())) == 422
    fresh, other = new_witness(), Log()
    other.grow(3)
    assert status_of(fresh, encode_add_checkpoint(0, [b"\x00" * 32], other.note())) == 422
    assert status_of(w, encode_add_checkpoint(5, [proof[0]], first.record.note)) == 422


def test_fork_same_size_409_with_evidence() -> None:
    log, w = Log(), new_witness()
    log.grow(6)
    first = accept(w, log.request(0))
    forked_cp = Checkpoint(ORIGIN, 6, hashlib.sha256(b"other root").digest())
    forked = sign_checkpoint(forked_cp, LOG_SIGNER)
    open_checkpoint(forked, LOG_KEY)  # validly signed by the log
    with pytest.raises(RootConflictError) as info:
        w.add_checkpoint(encode_add_checkpoint(6, [], forked), NOW)
    err = info.value
    assert err.status == 409
    assert err.current_size == 6
    assert err.evidence is not None and err.evidence.kind == "fork"
    assert err.evidence.origin == ORIGIN
    assert err.evidence.recorded_note == first.record.note
    assert err.evidence.offending_note == forked
    # Both halves open under the log key, same size, different roots.
    a = open_checkpoint(err.evidence.recorded_note, LOG_KEY).checkpoint
    b = open_checkpoint(err.evidence.offending_note, LOG_KEY).checkpoint
    assert a.size == b.size and a.root_hash != b.root_hash
    assert w.record(ORIGIN) == first.record


def test_fork_at_larger_size_422_with_evidence() -> None:
    log, w = Log(), new_witness()
    log.grow(6)
    accept(w, log.request(0))
    fork = Log()
    fork.grow(5)
    fork.appender.append([b"different"])
    fork.leaves.append(merkle.leaf_hash(b"different"))
    fork.grow(4)
    with pytest.raises(InconsistentProofError) as info:
        w.add_checkpoint(fork.request(6), NOW)
    assert info.value.evidence is not None
    assert info.value.evidence.offending_note == fork.note()


def test_new_log_nonempty_root_at_size_zero_409() -> None:
    cp = Checkpoint(ORIGIN, 0, b"\x07" * 32)
    with pytest.raises(RootConflictError) as info:
        new_witness().add_checkpoint(
            encode_add_checkpoint(0, [], sign_checkpoint(cp, LOG_SIGNER)), NOW
        )
    assert info.value.evidence is None


def test_state_not_changed_until_commit() -> None:
    log, w = Log(), new_witness()
    log.grow(2)
    r1 = w.add_checkpoint(log.request(0), NOW)
    assert w.record(ORIGIN) is None
    log.grow(2)
    r_stale = w.add_checkpoint(encode_add_checkpoint(0, [], log.note()), NOW)
    w.commit(r1)
    with pytest.raises(LocalProtocolError):
        w.commit(r_stale)  # checked against state that has since changed
    assert w.record(ORIGIN) == r1.record


def test_witness_refuses_own_key_and_bad_state() -> None:
    with pytest.raises(LocalProtocolError):
        Witness(LOG_SIGNER, {ORIGIN: LOG_KEY})
    with pytest.raises(LocalProtocolError):
        Witness(WITNESS_SIGNER, {ORIGIN: WITNESS_VKEY})
    log = Log()
    log.grow(3)
    note = log.note()
    with pytest.raises(LocalProtocolError):
        new_witness({ORIGIN: LogRecord(4, merkle.root(log.leaves), note)})
    with pytest.raises(LocalProtocolError):
        new_witness({"z.example/log/z.example/p": LogRecord(3, merkle.root(log.leaves), note)})


# --------------------------------------------------------------------------- properties


@given(steps=st.lists(st.integers(0, 40), min_size=1, max_size=8))
@SETTINGS
def test_random_growth_always_accepted(steps: list[int]) -> None:
    log, w = Log(), new_witness()
    old = 0
    for n in steps:
        log.grow(n)
        note = log.note()
        check_cosigned(accept(w, encode_add_checkpoint(old, log.proof(old), note)), note)
        old = len(log.leaves)


@given(
    old=st.integers(1, 60),
    extra=st.integers(1, 60),
    data=st.data(),
)
@SETTINGS
def test_any_altered_proof_byte_refused(old: int, extra: int, data: st.DataObject) -> None:
    log, w = Log(), new_witness()
    log.grow(old)
    accept(w, log.request(0))
    log.grow(extra)
    proof = log.proof(old)
    if not proof:  # old is a power of two dividing the new tree's left subtree: none
        return
    i = data.draw(st.integers(0, len(proof) - 1))
    j = data.draw(st.integers(0, 31))
    bit = data.draw(st.integers(0, 7))
    altered = list(proof)
    altered[i] = proof[i][:j] + bytes([proof[i][j] ^ (1 << bit)]) + proof[i][j + 1 :]
    with pytest.raises(InconsistentProofError) as info:
        w.add_checkpoint(encode_add_checkpoint(old, altered, log.note()), NOW)
    assert info.value.status == 422
    # The unaltered proof still works.
    check_cosigned(w.add_checkpoint(encode_add_checkpoint(old, proof, log.note()), NOW), log.note())
