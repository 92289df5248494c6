"""Tests for fedpetition.core.notes: signed notes, checkpoints, cosignatures.

Vectors and where they come from:

* Go: golang.org/x/mod, sumdb/note/note_test.go (TestNewVerifier, TestNewSigner,
  TestSign, TestOpen) and the package doc of sumdb/note/note.go: the PeterNeumann
  and EnochRoot keys, text and signature lines.
* C2SP: github.com/C2SP/C2SP at 5ba5ee830903e91240fc6f9f3a7a9293d49e69c9,
  signed-note.md ("Verifier keys" example), tlog-checkpoint.md (example
  checkpoint) and tlog-cosignature.md (example cosignature and signed message).
  The keys of the behind-the-sofa example are not published, so that example is
  only parsed, never verified.
* A real checkpoint of the log arche2025h1.staging.ct.transparency.dev with
  witness cosignatures, and its log vkey, as in florolf/tlog-scales,
  tests/test_signing.py (TestCheckpointVerification, commit dfd5c4bf3b0c). The
  remora.n621.de type-0x04 vkey is also in transparency-dev/formats,
  note/note_cosigv1_test.go (TestCoSigV1NewVerifier).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpetition.core.errors import DecodeError, LocalProtocolError, SignatureError
from fedpetition.core.notes import (
    MAX_TIMESTAMP,
    SIG_TYPE_COSIGNATURE_V1,
    SIG_TYPE_ED25519,
    Checkpoint,
    Signer,
    VerifierKey,
    add_signature_lines,
    cosign,
    cosignature_message,
    open_checkpoint,
    open_note,
    parse_signature_line,
    sign_checkpoint,
    sign_note,
    verify_cosignature_line,
)

# --------------------------------------------------------------------------- vectors

# golang.org/x/mod sumdb/note/note_test.go (TestSign, TestOpen).
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXg"
    "KvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTG"
    "wnWLox33WWd1RvMc+QQ=\n"
)
GO_NOTE = GO_TEXT + "\n" + PETER_SIG

# C2SP signed-note.md, "Verifier keys" / "Example".
FOO_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
FOO_NOTE = (
    "This is an example message.\n\n\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6Tf"
    "Xppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)

# C2SP tlog-checkpoint.md and tlog-cosignature.md examples.
SOFA_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SOFA_NOTE = (
    SOFA_BODY
    + "\n\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URY"
    "N7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlr"
    "DJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)
SOFA_COSIGNED_MESSAGE = b"cosignature/v1\ntime 1679315147\n" + SOFA_BODY.encode()

# florolf/tlog-scales tests/test_signing.py: a real static-ct checkpoint. Its
# first line is an RFC 6962 (type 0x05) signature by the log's name under another
# key ID; the other witnesses' keys are not given to the verifier.
ARCHE_VKEY = (
    "arche2025h1.staging.ct.transparency.dev+ba2f06c0+AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f"
)
REMORA_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
ARCHE_BODY = (
    "arche2025h1.staging.ct.transparency.dev\n"
    "1432088532\n"
    "U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=\n"
)
ARCHE_NOTE = (
    ARCHE_BODY
    + "\n"
    + "\u2014 arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6"
    "hoGREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=\n"
    "\u2014 arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwh"
    "UkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=\n"
    "\u2014 transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KY"
    "TzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==\n"
    "\u2014 witness1.smartit.nu/witness1 pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH+"
    "/iEcxZ75W3u5hNI7TOQtmJbqmNWVuE0tgh0XwzdZsDsUAQ==\n"
    "\u2014 remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIob"
    "WX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==\n"
    "\u2014 witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvV"
    "r+AJmIY/2TUFucgKi7lI7cUiOvKFYe/TmN9DAg==\n"
)
ARCHE_COSIGNED_AT = 0x6A122120  # the u64 after remora's key ID in its line

# Our own fixed keys.
LOG = Signer("log.example/petitions", bytes(range(32)))
WITNESS = Signer("witness.example/w1", bytes([7]) * 32)
STRANGER = Signer("stranger.example/w9", bytes([9]) * 32)
LOG_VKEY = LOG.verifier_key()
WITNESS_VKEY = WITNESS.verifier_key(SIG_TYPE_COSIGNATURE_V1)
T0 = 1_700_000_000


def _line(name: str, blob: bytes) -> str:
    return f"\u2014 {name} {base64.b64encode(blob).decode()}\n"


def _cosigned_checkpoint(cp: Checkpoint) -> str:
    """A checkpoint signed by LOG, cosigned by WITNESS and by an unknown STRANGER."""
    body = cp.body()
    return add_signature_lines(
        sign_checkpoint(cp, LOG), [cosign(body, WITNESS, T0), cosign(body, STRANGER, T0 + 1)]
    )


CP = Checkpoint("log.example/petitions", 12345, hashlib.sha256(b"root").digest())
CP_NOTE = _cosigned_checkpoint(CP)


# --------------------------------------------------------------------------- keys


def test_go_keys_round_trip() -> None:
    signer = Signer.from_private_key_string(PETER_SKEY)
    assert signer.name == "PeterNeumann"
    assert signer.key_id(SIG_TYPE_ED25519) == 0xC74F20A3
    assert signer.private_key_string() == PETER_SKEY
    assert str(signer.verifier_key()) == PETER_VKEY
    vkey = VerifierKey.parse(PETER_VKEY)
    assert vkey == signer.verifier_key()
    assert (vkey.name, vkey.sig_type, vkey.key_id) == ("PeterNeumann", 1, 0xC74F20A3)
    assert vkey.public_key == signer.public_key and len(vkey.public_key) == 32
    assert vkey.to_string() == PETER_VKEY
    assert vkey.key_ref == "PeterNeumann+c74f20a3"
    assert hash(vkey) == hash(VerifierKey.parse(PETER_VKEY))


def test_c2sp_example_vkey() -> None:
    vkey = VerifierKey.parse(FOO_VKEY)
    assert vkey.public_key.hex() == (
        "e932791ae6e7a840a46164c904786426d5e7821dd8b29a00d61cae72afdd4da4"
    )
    assert vkey.key_id == 0x530D903A and str(vkey) == FOO_VKEY


def _manglings(s: str) -> list[str]:
    """As Go's TestNewVerifier: every proper substring and every +1 byte change."""
    b = s.encode()
    out = {b[i:j] for i in range(len(b) + 1) for j in range(i + 1, len(b) + 1)}
    out.discard(b)
    for i in range(len(b)):
        out.add(b[:i] + bytes([b[i] + 1]) + b[i + 1 :])
    return sorted(x.decode() for x in out)


def test_every_vkey_mangling_is_rejected() -> None:
    accepted = []
    for k in _manglings(PETER_VKEY):
        try:
            VerifierKey.parse(k)
        except DecodeError:
            continue
        accepted.append(k)
    assert accepted == []


def test_every_private_key_mangling_is_rejected() -> None:
    accepted = []
    for k in _manglings(PETER_SKEY):
        try:
            Signer.from_private_key_string(k)
        except DecodeError as e:
            assert "AYEKFALV" not in str(e)  # the secret never appears in errors
            continue
        accepted.append(k)
    assert accepted == []


@pytest.mark.parametrize(
    "vkey",
    [
        # Go's extra bad keys: wrong key length and unknown algorithm, hash adjusted.
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        # Go accepts uppercase hex; we want one spelling per key.
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+0xc74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\n",
        " PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW=",
        "PeterNeumann+c74f20a3",
        "",
    ],
)
def test_bad_vkeys(vkey: str) -> None:
    with pytest.raises(DecodeError):
        VerifierKey.parse(vkey)


def _vkey_string(name: str, sig_type: int, public_key: bytes) -> str:
    kid = hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:4]
    return f"{name}+{kid.hex()}+{base64.b64encode(bytes([sig_type]) + public_key).decode()}"


@pytest.mark.parametrize("sig_type", [0x00, 0x02, 0x03, 0x05, 0x06, 0xFF])
def test_unsupported_vkey_types(sig_type: int) -> None:
    with pytest.raises(DecodeError, match="unsupported signature type"):
        VerifierKey.parse(_vkey_string("example.com/k", sig_type, bytes(32)))
    with pytest.raises(LocalProtocolError):
        VerifierKey.from_public_key("example.com/k", bytes(32), sig_type)


def test_cosignature_vkey() -> None:
    vkey = VerifierKey.parse(REMORA_VKEY)
    assert vkey.sig_type == SIG_TYPE_COSIGNATURE_V1 and str(vkey) == REMORA_VKEY
    valid = Signer("w", bytes(32)).public_key
    assert VerifierKey.parse(_vkey_string("w", 4, valid)).sig_type == 4


# The identity point (encoded 01 00..00) and the all-zero encoding are small-order:
# under such a key a trivial signature verifies in some libraries (RFC 8032 §5.1.7
# leaves the check to the implementation), so such keys are refused.
@pytest.mark.parametrize("bad", [bytes(32), b"\x01" + bytes(31), b"\xec" + b"\xff" * 30 + b"\x7f"])
def test_small_order_and_non_canonical_keys_refused(bad: bytes) -> None:
    with pytest.raises(DecodeError, match="prime-order point"):
        VerifierKey.parse(_vkey_string("w", 1, bad))


def test_verifier_key_is_frozen_and_checked() -> None:
    vkey = VerifierKey.parse(PETER_VKEY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        vkey.name = "x"  # type: ignore[misc]
    with pytest.raises(LocalProtocolError, match="does not match"):
        VerifierKey("PeterNeumann", 1, vkey.public_key, vkey.key_id + 1)
    with pytest.raises(LocalProtocolError):
        VerifierKey("PeterNeumann", 1, vkey.public_key[:31], vkey.key_id)
    with pytest.raises(LocalProtocolError):
        VerifierKey("PeterNeumann", True, vkey.public_key, vkey.key_id)
    assert VerifierKey.from_public_key("PeterNeumann", vkey.public_key) == vkey


def test_signer() -> None:
    seed = bytes(range(32))
    a, b = Signer("example.com/a", seed), Signer.generate("example.com/a", seed)
    assert a.public_key == b.public_key and a.sign(b"m") == b.sign(b"m")
    assert len(a.sign(b"m")) == 64
    a.verifier_key().verify(b"m", a.sign(b"m"))
    assert a.key_id(1) != a.key_id(4)
    assert a.verifier_key(4).key_id == a.key_id(4)
    with pytest.raises(SignatureError, match=r"example\.com/a\+"):
        a.verifier_key().verify(b"n", a.sign(b"m"))
    with pytest.raises(SignatureError, match="63 bytes"):
        a.verifier_key().verify(b"m", a.sign(b"m")[:63])
    with pytest.raises(LocalProtocolError):
        a.key_id(2)
    with pytest.raises(LocalProtocolError):
        Signer("example.com/a", seed[:31])
    assert seed.hex() not in repr(a) and "PRIVATE" not in repr(a)


@pytest.mark.parametrize(
    "name", ["", "a b", "a+b", "a\tb", "a\nb", "a\x01b", "a\u00a0b", "a\u2003b", "a\u3000b"]
)
def test_bad_key_names(name: str) -> None:
    with pytest.raises(LocalProtocolError):
        Signer(name, bytes(32))
    with pytest.raises(LocalProtocolError):
        VerifierKey.from_public_key(name, bytes(32))


# --------------------------------------------------------------------------- notes


def test_go_sign_vector_byte_for_byte() -> None:
    # Ed25519 is deterministic, so signing reproduces Go's note exactly.
    signer = Signer.from_private_key_string(PETER_SKEY)
    assert sign_note(GO_TEXT, [signer]) == GO_NOTE


def test_go_open_vector() -> None:
    peter = VerifierKey.parse(PETER_VKEY)
    opened = open_note(GO_NOTE, [peter])
    assert opened.text == GO_TEXT
    assert opened.verifiers == (peter,)
    assert opened.verified[0].timestamp is None
    assert opened.signature_lines == (PETER_SIG,)
    assert open_note(GO_NOTE.encode(), [peter]) == opened


def test_c2sp_example_note() -> None:
    opened = open_note(FOO_NOTE, [VerifierKey.parse(FOO_VKEY)])
    assert opened.text == "This is an example message.\n"


def test_go_open_one_known_one_unknown() -> None:
    peter, enoch = VerifierKey.parse(PETER_VKEY), VerifierKey.parse(ENOCH_VKEY)
    note = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    opened = open_note(note, [peter])
    assert opened.verifiers == (peter,)
    assert [s.key_ref for s in opened.unverified] == ["EnochRoot+af0cfe78"]
    assert opened.signature_lines == (PETER_SIG, ENOCH_SIG)
    assert open_note(note, [enoch, peter]).verifiers == (peter, enoch)
    with pytest.raises(SignatureError, match="no signature by a known key"):
        open_note(note, [])
    # Listing the same key twice is harmless.
    assert open_note(note, [peter, peter]).verifiers == (peter,)


def test_known_key_with_bad_signature_rejects_the_note() -> None:
    peter, enoch = VerifierKey.parse(PETER_VKEY), VerifierKey.parse(ENOCH_VKEY)
    bad_peter = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(SignatureError, match=r"PeterNeumann\+c74f20a3"):
        open_note(GO_TEXT + "\n" + bad_peter, [peter])
    # One valid known signature does not excuse a failing one.
    bad_enoch = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    with pytest.raises(SignatureError, match=r"EnochRoot\+af0cfe78"):
        open_note(GO_TEXT + "\n" + PETER_SIG + bad_enoch, [peter, enoch])
    # A known key's signature of the wrong length fails like any bad signature.
    with pytest.raises(SignatureError, match=r"PeterNeumann\+c74f20a3 is 2 bytes"):
        open_note(GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJ\n", [peter])
    # ...but a failing signature by an unknown key is ignored.
    assert open_note(GO_TEXT + "\n" + PETER_SIG + bad_enoch, [peter]).verifiers == (peter,)


def test_name_or_id_alone_does_not_make_a_key_known() -> None:
    peter = VerifierKey.parse(PETER_VKEY)
    # Same name, other key (so other ID).
    impostor = VerifierKey.from_public_key("PeterNeumann", Signer("x", bytes(32)).public_key)
    with pytest.raises(SignatureError, match="no signature by a known key"):
        open_note(GO_NOTE, [impostor])
    # Same ID, other name.
    renamed = GO_TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "PeterNeumann2")
    with pytest.raises(SignatureError, match="no signature by a known key"):
        open_note(renamed, [peter])


def test_duplicate_signatures() -> None:
    peter = VerifierKey.parse(PETER_VKEY)
    # Go ignores a repeated signature by a known key; we reject it as malformed.
    with pytest.raises(DecodeError, match="two signatures"):
        open_note(GO_TEXT + "\n" + PETER_SIG + PETER_SIG, [peter])
    # Repeats by unknown keys are ignored like any unknown signature.
    opened = open_note(GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG + ENOCH_SIG, [peter])
    assert opened.verifiers == (peter,) and len(opened.unverified) == 2


def test_signature_count_limit() -> None:
    peter = VerifierKey.parse(PETER_VKEY)
    assert open_note(GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG * 99, [peter]).verifiers == (peter,)
    for verifiers in ([peter], []):
        with pytest.raises(DecodeError, match="more than 100"):
            open_note(GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG * 100, verifiers)


@pytest.mark.parametrize(
    "note",
    [
        # Go's TestOpen bad messages.
        GO_TEXT,
        GO_TEXT + "\n",
        GO_TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + GO_TEXT + "\n" + PETER_SIG,
        b"\xff" + (GO_TEXT + "\n" + PETER_SIG).encode(),
        GO_TEXT + "\n" + "\u2014 Bad Name " + PETER_SIG.split(" ")[2],
        GO_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        # More of signed-note §Format.
        GO_TEXT + "\n" + PETER_SIG.replace("\u2014", "-"),
        GO_TEXT + "\n" + PETER_SIG.replace("\u2014 ", "\u2014"),
        GO_TEXT + "\n" + "\u2014 PeterNeumann\n",
        GO_TEXT + "\n" + "\u2014 PeterNeumann \n",
        GO_TEXT + "\n" + "\u2014  x08go/ZJk=\n",
        GO_TEXT + "\n" + "\u2014 PeterNeumann x08go/Z\n",  # not padded
        GO_TEXT + "\n" + "\u2014 PeterNeumann x08g\n",  # key ID and nothing else
        GO_TEXT + "\n" + PETER_SIG.replace("AM=", "AM"),
        GO_TEXT + "\n" + PETER_SIG.replace("AM=", "AN="),  # non-canonical trailing bits
        GO_TEXT + "\n" + PETER_SIG.replace("\n", "\r\n"),
        GO_TEXT.replace("\n", "\r\n", 1) + "\n" + PETER_SIG,
        GO_TEXT + "\n" + PETER_SIG + "\n",
        (GO_TEXT + "\n" + PETER_SIG).encode("utf-16"),
        "\ud800" + GO_TEXT + "\n" + PETER_SIG,
        b"\xc0\x80" + (GO_TEXT + "\n" + PETER_SIG).encode(),  # overlong NUL
        b"\xed\xa0\x80" + (GO_TEXT + "\n" + PETER_SIG).encode(),  # UTF-8 surrogate
    ],
)
def test_malformed_notes(note: str | bytes) -> None:
    with pytest.raises(DecodeError):
        open_note(note, [VerifierKey.parse(PETER_VKEY)])


def test_sign_note_misuse() -> None:
    peter = Signer.from_private_key_string(PETER_SKEY)
    for text in ["abc", "", "a\rb\n", "tab\there\n", "\ud800\n"]:
        with pytest.raises(LocalProtocolError):
            sign_note(text, [peter])
    with pytest.raises(LocalProtocolError):
        sign_note(GO_TEXT, [])
    with pytest.raises(LocalProtocolError, match=r"PeterNeumann\+c74f20a3"):
        sign_note(GO_TEXT, [peter, Signer.from_private_key_string(PETER_SKEY)])


def test_text_with_blank_lines() -> None:
    # signed-note §Format: the signatures start after the last blank line.
    peter = Signer.from_private_key_string(PETER_SKEY)
    for text in ["a\n\nb\n", "a\n\n", "\n", "a\n\n\u2014 x y\n"]:
        assert open_note(sign_note(text, [peter]), [peter.verifier_key()]).text == text


_note_text = st.text(
    st.characters(min_codepoint=0x20, codec="utf-8") | st.just("\n"),
    max_size=200,
).map(lambda s: s + "\n")


@settings(max_examples=100)
@given(text=_note_text, seed=st.binary(min_size=32, max_size=32))
def test_sign_open_round_trip(text: str, seed: bytes) -> None:
    signer = Signer("example.com/prop", seed)
    note = sign_note(text, [signer, LOG])
    opened = open_note(note.encode(), [signer.verifier_key(), LOG_VKEY])
    assert opened.text == text
    assert opened.verifiers == (signer.verifier_key(), LOG_VKEY)


# --------------------------------------------------------------------------- checkpoints


def test_c2sp_example_checkpoint_parses() -> None:
    cp = Checkpoint.parse_body(SOFA_BODY)
    assert cp.origin == "example.com/behind-the-sofa"
    assert cp.size == 20852163
    assert cp.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert cp.extensions == ()
    assert cp.body() == SOFA_BODY
    # Its keys are unpublished: the note is well formed, but nothing verifies it.
    with pytest.raises(SignatureError, match="behind-the-sofa"):
        open_checkpoint(SOFA_NOTE, LOG_VKEY, [WITNESS_VKEY])


def test_c2sp_example_cosignature_layout() -> None:
    # tlog-cosignature: key ID || u64 timestamp || 64-byte Ed25519 signature; the
    # example's timestamp is the one in the spec's signed-message example.
    sig = parse_signature_line(SOFA_NOTE.splitlines()[-1])
    assert sig.name == "witness.example.com/w1"
    assert len(sig.signature) == 8 + 64
    assert int.from_bytes(sig.signature[:8], "big") == 1679315147
    assert cosignature_message(SOFA_BODY, 1679315147) == SOFA_COSIGNED_MESSAGE


def test_real_checkpoint_with_witness_cosignature() -> None:
    log, remora = VerifierKey.parse(ARCHE_VKEY), VerifierKey.parse(REMORA_VKEY)
    opened = open_checkpoint(ARCHE_NOTE, log, [remora])
    assert opened.checkpoint == Checkpoint.parse_body(ARCHE_BODY)
    assert opened.checkpoint.size == 1432088532
    assert opened.cosignatures == ((remora, ARCHE_COSIGNED_AT),)
    # The type-0x05 line shares the log's name, not its key ID: ignored.
    assert len(opened.note.unverified) == 4
    assert verify_cosignature_line(ARCHE_BODY, ARCHE_NOTE.splitlines()[-2], remora) == (
        ARCHE_COSIGNED_AT
    )
    # Without the witness key, the log signature alone suffices.
    assert open_checkpoint(ARCHE_NOTE, log).cosignatures == ()
    # Another size: both the log and the witness signature fail.
    clobbered = ARCHE_NOTE.replace("1432088532", "1432088533")
    with pytest.raises(SignatureError, match=r"ba2f06c0"):
        open_checkpoint(clobbered, log)
    with pytest.raises(SignatureError, match=r"remora\.n621\.de\+da77ade7"):
        verify_cosignature_line(
            clobbered.split("\n\n")[0] + "\n", ARCHE_NOTE.splitlines()[-2], remora
        )


def test_checkpoint_round_trip_with_cosignature() -> None:
    opened = open_checkpoint(CP_NOTE, LOG_VKEY, [WITNESS_VKEY])
    assert opened.checkpoint == CP
    assert opened.cosignatures == ((WITNESS_VKEY, T0),)
    assert [s.name for s in opened.note.unverified] == ["stranger.example/w9"]
    assert open_checkpoint(CP_NOTE, LOG_VKEY).cosignatures == ()


def test_checkpoint_needs_the_log_signature() -> None:
    # A cosignature alone is not enough; the error names the origin and the key.
    only_witness = CP.body() + "\n" + cosign(CP.body(), WITNESS, T0)
    with pytest.raises(SignatureError, match=r"log\.example/petitions.*log\.example/petitions\+"):
        open_checkpoint(only_witness, LOG_VKEY, [WITNESS_VKEY])
    other_log = Signer("log.example/petitions", bytes([1]) * 32)
    with pytest.raises(SignatureError, match="no signature by log key"):
        open_checkpoint(sign_checkpoint(CP, other_log), LOG_VKEY)


def test_checkpoint_key_type_misuse() -> None:
    with pytest.raises(LocalProtocolError):
        open_checkpoint(CP_NOTE, WITNESS_VKEY)
    with pytest.raises(LocalProtocolError):
        open_checkpoint(CP_NOTE, LOG_VKEY, [WITNESS.verifier_key(SIG_TYPE_ED25519)])


@pytest.mark.parametrize(
    "body",
    [
        "",
        "\n",
        "example.com/log\n",
        "example.com/log\n5\n",
        "example.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",  # no final newline
        "\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",  # empty origin
        "example.com/log\n05\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "example.com/log\n00\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "example.com/log\n+5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "example.com/log\n-5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "example.com/log\n 5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "example.com/log\n5 \nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "example.com/log\n1_000\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "example.com/log\n\u0665\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",  # Arabic 5
        "example.com/log\n0x10\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "example.com/log\n\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        f"example.com/log\n{2**63}\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        f"example.com/log\n{10**30}\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "example.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n",  # trailing bits
        "example.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n",  # unpadded
        "example.com/log\n5\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n",  # URL alphabet
        "example.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I= \n",
        "example.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jx\n",  # 28 bytes
        "example.com/log\n5\n" + base64.b64encode(bytes(33)).decode() + "\n",
        "example.com/log\n5\n\n",
        "example.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n",  # empty ext
        "example.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\next\n\n",
        "example.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\r\n",
        "exa\tmple.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
    ],
)
def test_malformed_checkpoint_bodies(body: str) -> None:
    with pytest.raises(DecodeError):
        Checkpoint.parse_body(body)


def test_malformed_checkpoint_note_is_decode_error() -> None:
    # A signature by the log does not make a malformed body acceptable.
    body = "example.com/log\n05\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    with pytest.raises(DecodeError, match="tree size"):
        open_checkpoint(sign_note(body, [LOG]), LOG_VKEY)


def test_checkpoint_edges() -> None:
    root = bytes(32)
    for size in (0, 2**63 - 1):
        cp = Checkpoint("o", size, root, ("ext one", "\u2014 looks like a signature"))
        assert Checkpoint.parse_body(cp.body()) == cp
    bads: list[dict[str, object]] = [
        {"origin": ""},
        {"origin": "a\nb"},
        {"size": -1},
        {"size": 2**63},
        {"size": True},
        {"root_hash": bytes(31)},
        {"extensions": ("",)},
        {"extensions": ("a\nb",)},
        {"extensions": ["x"]},
    ]
    for bad in bads:
        fields: dict[str, object] = {"origin": "o", "size": 1, "root_hash": root, **bad}
        with pytest.raises(LocalProtocolError):
            Checkpoint(**fields)  # type: ignore[arg-type]


_line_text = st.text(st.characters(min_codepoint=0x20, codec="utf-8"), min_size=1, max_size=40)


@settings(max_examples=100)
@given(
    cp=st.builds(
        Checkpoint,
        origin=_line_text,
        size=st.integers(0, 2**63 - 1),
        root_hash=st.binary(min_size=32, max_size=32),
        extensions=st.lists(_line_text, max_size=3).map(tuple),
    )
)
def test_checkpoint_body_round_trip(cp: Checkpoint) -> None:
    assert Checkpoint.parse_body(cp.body()) == cp
    assert open_checkpoint(sign_checkpoint(cp, LOG), LOG_VKEY).checkpoint == cp


def test_extension_lines_are_signed_and_cosigned() -> None:
    cp = Checkpoint("log.example/petitions", 7, bytes(32), ("ext",))
    note = add_signature_lines(sign_checkpoint(cp, LOG), [cosign(cp.body(), WITNESS, T0)])
    assert open_checkpoint(note, LOG_VKEY, [WITNESS_VKEY]).checkpoint.extensions == ("ext",)
    log_only = note.replace("\next\n", "\nexu\n")
    with pytest.raises(SignatureError):
        open_checkpoint(log_only, LOG_VKEY)


# --------------------------------------------------------------------------- cosignatures


def test_cosignature_exposes_timestamp() -> None:
    for ts in (0, T0, MAX_TIMESTAMP):
        line = cosign(CP.body(), WITNESS, ts)
        sig = parse_signature_line(line)
        assert sig.key_id == WITNESS.key_id(SIG_TYPE_COSIGNATURE_V1)
        assert int.from_bytes(sig.signature[:8], "big") == ts
        assert verify_cosignature_line(CP.body(), line, WITNESS_VKEY) == ts
        note = add_signature_lines(sign_checkpoint(CP, LOG), [line])
        assert open_checkpoint(note, LOG_VKEY, [WITNESS_VKEY]).cosignatures == ((WITNESS_VKEY, ts),)
        # The same text as an ordinary note, seen through open_note.
        assert open_note(note, [WITNESS_VKEY]).verified[0].timestamp == ts


def test_cosignature_message_format() -> None:
    line = cosign(CP.body(), WITNESS, T0)
    sig = parse_signature_line(line)
    message = b"cosignature/v1\ntime 1700000000\n" + CP.body().encode()
    assert cosignature_message(CP.body(), T0) == message
    WITNESS.verifier_key(SIG_TYPE_COSIGNATURE_V1).verify(message, sig.signature[8:])


@pytest.mark.parametrize(
    "other",
    [
        dataclasses.replace(CP, size=CP.size + 1),
        dataclasses.replace(CP, root_hash=bytes(32)),
        dataclasses.replace(CP, origin="log.example/other"),
        dataclasses.replace(CP, extensions=("ext",)),
    ],
)
def test_cosignature_over_another_checkpoint_fails(other: Checkpoint) -> None:
    stolen = cosign(other.body(), WITNESS, T0)
    note = add_signature_lines(sign_checkpoint(CP, LOG), [stolen])
    with pytest.raises(SignatureError, match=r"invalid cosignature for key witness\.example/w1\+"):
        open_checkpoint(note, LOG_VKEY, [WITNESS_VKEY])
    with pytest.raises(SignatureError):
        verify_cosignature_line(CP.body(), stolen, WITNESS_VKEY)


def test_cosignature_time_is_signed() -> None:
    sig = parse_signature_line(cosign(CP.body(), WITNESS, T0))
    later = _line(
        sig.name, sig.key_id.to_bytes(4, "big") + (T0 + 1).to_bytes(8, "big") + sig.signature[8:]
    )
    with pytest.raises(SignatureError, match="time 1700000001"):
        verify_cosignature_line(CP.body(), later, WITNESS_VKEY)


def test_cosignature_key_types_do_not_mix() -> None:
    # The same Ed25519 key as type 0x01 has another key ID: its vkey ignores the line.
    line = cosign(CP.body(), WITNESS, T0)
    note = CP.body() + "\n" + line
    with pytest.raises(SignatureError, match="no signature by a known key"):
        open_note(note, [WITNESS.verifier_key(SIG_TYPE_ED25519)])
    with pytest.raises(SignatureError, match="not witness"):
        verify_cosignature_line(
            CP.body(), sign_note(CP.body(), [WITNESS]).split("\n\n")[1], WITNESS_VKEY
        )


def test_malformed_cosignature_blobs() -> None:
    kid = WITNESS.key_id(SIG_TYPE_COSIGNATURE_V1).to_bytes(4, "big")
    too_late = 2**63
    message = b"cosignature/v1\ntime " + str(too_late).encode() + b"\n" + CP.body().encode()
    blobs = {
        "71 bytes": T0.to_bytes(8, "big") + WITNESS.sign(b"x")[:63],
        "> 2\\^63-1": too_late.to_bytes(8, "big") + WITNESS.sign(message),
        "want 8": WITNESS.sign(cosignature_message(CP.body(), T0)),
    }
    for match, blob in blobs.items():
        line = _line(WITNESS.name, kid + blob)
        note = add_signature_lines(sign_checkpoint(CP, LOG), [line])
        with pytest.raises(SignatureError, match=match):
            open_checkpoint(note, LOG_VKEY, [WITNESS_VKEY])


def test_cosign_misuse() -> None:
    for ts in (-1, 2**63, True):
        with pytest.raises(LocalProtocolError):
            cosign(CP.body(), WITNESS, ts)
    with pytest.raises(LocalProtocolError, match="invalid checkpoint"):
        cosign("not a checkpoint\n", WITNESS, T0)
    with pytest.raises(LocalProtocolError):
        verify_cosignature_line(CP.body(), cosign(CP.body(), WITNESS, T0), LOG_VKEY)


def test_add_signature_lines() -> None:
    base = sign_checkpoint(CP, LOG)
    a = cosign(CP.body(), WITNESS, T0)
    b = cosign(CP.body(), STRANGER, T0)
    note = add_signature_lines(base, [a, b.rstrip("\n")])
    assert note == base + a + b
    assert add_signature_lines(note, [a]) == note  # exact repeat: no-op
    with pytest.raises(LocalProtocolError, match=r"witness\.example/w1\+"):
        add_signature_lines(note, [cosign(CP.body(), WITNESS, T0 + 1)])
    with pytest.raises(LocalProtocolError):
        add_signature_lines(base, [a, cosign(CP.body(), WITNESS, T0 + 1)])
    for bad in ["garbage", "\u2014 w AAAA\n", a + a, a.replace(" ", "  ", 1)]:
        with pytest.raises(DecodeError):
            add_signature_lines(base, [bad])
    with pytest.raises(DecodeError):
        add_signature_lines(CP.body(), [a])  # not a signed note
    many = [cosign(CP.body(), Signer(f"w{i}", bytes([i]) * 32), T0) for i in range(99)]
    full = add_signature_lines(base, many)
    assert len(open_checkpoint(full, LOG_VKEY).note.signatures) == 100
    with pytest.raises(LocalProtocolError, match="more than 100"):
        add_signature_lines(full, [a])


# --------------------------------------------------------------------------- tampering

_CP_BYTES = CP_NOTE.encode()
_BASELINE = open_checkpoint(CP_NOTE, LOG_VKEY, [WITNESS_VKEY])


def _byte_span(line: str) -> range:
    start = _CP_BYTES.index(line.encode())
    return range(start, start + len(line.encode()))


_WITNESS_SPAN = _byte_span(next(v.line for v in _BASELINE.note.verified if v.key == WITNESS_VKEY))
_STRANGER_SPAN = _byte_span(_BASELINE.note.unverified[0].line)


def _check_flip(index: int, mask: int) -> None:
    """Flipping one byte is detected, or only touches a line the verifier may ignore.

    Damage to the stranger's (unknown) line must change nothing. Damage to the
    witness's name or key ID turns its line into an unknown one, which
    signed-note says to ignore: the cosignature may then disappear, but the
    checkpoint and the other results never change.
    """
    data = bytearray(_CP_BYTES)
    data[index] ^= mask
    try:
        got = open_checkpoint(bytes(data), LOG_VKEY, [WITNESS_VKEY])
    except (DecodeError, SignatureError):
        return
    assert index in _STRANGER_SPAN or index in _WITNESS_SPAN, index
    assert got.checkpoint == _BASELINE.checkpoint
    if index in _STRANGER_SPAN:
        assert got.cosignatures == _BASELINE.cosignatures
    else:
        assert got.cosignatures == ()


def test_every_single_bit_and_byte_flip() -> None:
    for index in range(len(_CP_BYTES)):
        for mask in (0x01, 0x20, 0x80, 0xFF):
            _check_flip(index, mask)


@settings(max_examples=300)
@given(index=st.integers(0, len(_CP_BYTES) - 1), mask=st.integers(1, 255))
def test_random_byte_flips(index: int, mask: int) -> None:
    _check_flip(index, mask)
