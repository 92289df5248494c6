"""Tests for fedpetition.node.keys: key files and the data-at-rest key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fedpetition.core import voprf
from fedpetition.core.notes import Signer
from fedpetition.core.nullifiers import petition_key_pair
from fedpetition.node.errors import ConfigError, SealError
from fedpetition.node.keys import (
    DataKey,
    create_data_key,
    create_node_key,
    load_data_key,
    load_node_key,
)

NAME = "node-a.example"
SEED = bytes(range(32))
PETITION = "node-a.example/clean-air"
ALICE = "alice@example.org"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- node key


def test_node_key_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "node.key"
    created = create_node_key(path, NAME, seed=SEED)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    text = path.read_text()
    assert text == Signer(NAME, SEED).private_key_string() + "\n"
    assert text.startswith(f"PRIVATE+KEY+{NAME}+")
    loaded = load_node_key(path, NAME)
    assert loaded.private_key_string() == created.private_key_string()
    assert loaded.verifier_key() == created.verifier_key()


def test_node_key_is_random_without_a_seed(tmp_path: Path) -> None:
    a = create_node_key(tmp_path / "a.key", NAME)
    b = create_node_key(tmp_path / "b.key", NAME)
    assert a.public_key != b.public_key


def test_node_key_mode_ignores_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o277)
    try:
        create_node_key(tmp_path / "node.key", NAME, seed=SEED)
    finally:
        os.umask(old)
    assert mode(tmp_path / "node.key") == 0o600


def test_node_key_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    create_node_key(path, NAME, seed=SEED)
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="already exists; refusing to overwrite"):
        create_node_key(path, NAME)
    assert path.read_bytes() == before


def test_node_key_needs_a_valid_node_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot create a node key: node name"):
        create_node_key(tmp_path / "node.key", "Node A")
    assert not (tmp_path / "node.key").exists()


def test_node_key_named_after_another_node(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    create_node_key(path, NAME, seed=SEED)
    with pytest.raises(ConfigError) as info:
        load_node_key(path, "node-b.example")
    assert str(info.value) == (
        f"{path}: this key belongs to node 'node-a.example', but [node] name is 'node-b.example'"
    )


@pytest.mark.parametrize("bad_mode", [0o640, 0o604, 0o660, 0o620, 0o602, 0o644, 0o610])
def test_node_key_accessible_by_others_is_refused(tmp_path: Path, bad_mode: int) -> None:
    path = tmp_path / "node.key"
    create_node_key(path, NAME, seed=SEED)
    path.chmod(bad_mode)
    with pytest.raises(ConfigError) as info:
        load_node_key(path, NAME)
    message = str(info.value)
    assert message.startswith(f"{path}: the node key is accessible by group or others")
    assert f"(mode {bad_mode:04o})" in message
    assert f"run: chmod 600 {path}" in message


@pytest.mark.parametrize("good_mode", [0o600, 0o400])
def test_node_key_private_to_its_owner_is_accepted(tmp_path: Path, good_mode: int) -> None:
    path = tmp_path / "node.key"
    create_node_key(path, NAME, seed=SEED)
    path.chmod(good_mode)
    assert load_node_key(path, NAME).public_key == Signer(NAME, SEED).public_key


def test_node_key_missing(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    with pytest.raises(ConfigError, match=r"node.key: node key not found"):
        load_node_key(path, NAME)


def test_node_key_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    path.mkdir()
    with pytest.raises(ConfigError, match="the node key is not a regular file"):
        load_node_key(path, NAME)


def write_secret(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a valid node key: private key: want PRIVATE+KEY"),
        (b"hello\n", "not a valid node key: private key: want PRIVATE+KEY"),
        (b"PRIVATE+KEY+node-a.example+00000000+AQ==\n", "not a valid node key"),
        (b"\xffPRIVATE\n", "the node key is not ASCII text"),
        (b"x" * 5000, "too large to be a node key"),
    ],
)
def test_node_key_malformed(tmp_path: Path, content: bytes, message: str) -> None:
    path = write_secret(tmp_path / "node.key", content)
    with pytest.raises(ConfigError, match=message.replace("+", r"\+")):
        load_node_key(path, NAME)


def test_node_key_with_a_wrong_key_id_does_not_quote_the_secret(tmp_path: Path) -> None:
    text = Signer(NAME, SEED).private_key_string()
    prefix, key64 = text.rsplit("+", 1)
    path = write_secret(tmp_path / "node.key", f"{prefix[:-8]}00000000+{key64}\n".encode())
    with pytest.raises(ConfigError, match="key ID does not match") as info:
        load_node_key(path, NAME)
    assert key64 not in str(info.value)


# --------------------------------------------------------------------------- data key file


def test_data_key_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "data.key"
    created = create_data_key(path)
    assert mode(path) == 0o600
    raw = base64.b64decode(path.read_text().strip(), validate=True)
    assert len(raw) == 32
    loaded = load_data_key(path)
    assert loaded.master == created.master == raw
    assert loaded.email_index(PETITION, ALICE) == created.email_index(PETITION, ALICE)
    assert repr(loaded) == "DataKey(<secret>)"


def test_data_key_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "data.key"
    create_data_key(path)
    with pytest.raises(ConfigError, match="a data key already exists"):
        create_data_key(path)


def test_data_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.key"
    create_data_key(path)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=r"data key is accessible by group or others.*chmod 600"):
        load_data_key(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not base64!\n", "the data key is not base64"),
        (base64.b64encode(bytes(16)) + b"\n", "the data key is 16 bytes, want 32"),
        (b"", "the data key is 0 bytes, want 32"),
    ],
)
def test_data_key_malformed(tmp_path: Path, content: bytes, message: str) -> None:
    path = write_secret(tmp_path / "data.key", content)
    with pytest.raises(ConfigError, match=message):
        load_data_key(path)


def test_data_key_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data key not found"):
        load_data_key(tmp_path / "data.key")


# --------------------------------------------------------------------------- DataKey


KEY = DataKey(bytes(range(32)))


def test_seal_open_round_trip() -> None:
    sealed = KEY.seal(b"Alice Example <alice@example.org>", b"row 1")
    assert len(sealed) == 12 + 33 + 16
    assert b"alice" not in sealed
    assert KEY.open(sealed, b"row 1") == b"Alice Example <alice@example.org>"
    # A fresh nonce each time: sealing twice gives two different values.
    assert KEY.seal(b"x", b"row 1") != KEY.seal(b"x", b"row 1")
    assert KEY.open(KEY.seal(b"", b""), b"") == b""


@pytest.mark.parametrize("position", [0, 11, 12, 20, -16, -1])
def test_tampered_seal_does_not_open(position: int) -> None:
    sealed = bytearray(KEY.seal(b"a private record", b"row 1"))
    sealed[position] ^= 0x01
    with pytest.raises(SealError, match="does not open"):
        KEY.open(bytes(sealed), b"row 1")


def test_seal_is_bound_to_its_context_and_key() -> None:
    sealed = KEY.seal(b"a private record", b"row 1")
    with pytest.raises(SealError):
        KEY.open(sealed, b"row 2")
    with pytest.raises(SealError):
        DataKey(bytes(32)).open(sealed, b"row 1")
    with pytest.raises(SealError, match="too short"):
        KEY.open(sealed[:27], b"row 1")


def test_email_index() -> None:
    index = KEY.email_index(PETITION, ALICE)
    assert len(index) == 32
    assert index == DataKey(bytes(range(32))).email_index(PETITION, ALICE)
    others = {
        KEY.email_index("node-a.example/other", ALICE),
        KEY.email_index(PETITION, "bob@example.org"),
        DataKey(bytes(32)).email_index(PETITION, ALICE),
        KEY.oprf_key_pair(PETITION)[0],
        KEY.mac(b"email index", ALICE.encode()),
    }
    assert index not in others and len(others) == 5


def _subkey(master: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869) with an empty salt and one output block, spelled out."""
    prk = hmac.new(bytes(32), master, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def _fields(*parts: bytes) -> bytes:
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def test_derivations_match_their_description() -> None:
    """Changing a derivation orphans every stored row: these values must never change."""
    master = bytes(range(32))
    signer = _fields(PETITION.encode(), ALICE.encode())
    index = hmac.new(_subkey(master, b"fedpetition email index v1"), signer, hashlib.sha256)
    oprf_secret = _subkey(master, b"fedpetition nullifier v1")
    token = _subkey(master, b"fedpetition token v1")
    tag = hmac.new(token, _fields(b"csrf", b"session 1"), hashlib.sha256)
    assert KEY.email_index(PETITION, ALICE) == index.digest()
    assert KEY.oprf_key_pair(PETITION) == petition_key_pair(oprf_secret, PETITION)
    assert KEY.mac(b"csrf", b"session 1") == tag.digest()
    assert index.hexdigest() == "7138cd81248844963ed35b3c1eee4224f5c8dfdf6226cf4bd8f9b384cfdbad18"
    # Sealing: AES-256-GCM under the "seal" subkey, nonce first, context as associated data.
    sealed = KEY.seal(b"record", b"row 1")
    aead = AESGCM(_subkey(master, b"fedpetition seal v1"))
    assert aead.decrypt(sealed[:12], sealed[12:], b"row 1") == b"record"


def test_length_prefixing_keeps_fields_apart() -> None:
    assert KEY.mac(b"ab", b"c") != KEY.mac(b"a", b"bc")


def test_email_index_wants_a_normalised_address() -> None:
    with pytest.raises(ValueError, match="normalise_email"):
        KEY.email_index(PETITION, "Alice@example.org")


def test_oprf_keys_are_per_petition_and_stable() -> None:
    secret, public = KEY.oprf_key_pair(PETITION)
    assert (secret, public) == DataKey(bytes(range(32))).oprf_key_pair(PETITION)
    assert public == voprf.derive_key_pair(*_seed_and_info(PETITION))[1]
    assert KEY.oprf_key_pair("node-a.example/other")[1] != public
    assert DataKey(bytes(32)).oprf_key_pair(PETITION)[1] != public


def _seed_and_info(petition_id: str) -> tuple[bytes, bytes]:
    info = b"fedpetition-oprf-key/v1\n" + petition_id.encode()
    secret = _subkey(bytes(range(32)), b"fedpetition nullifier v1")
    return hmac.new(secret, info, hashlib.sha256).digest(), info


def test_mac() -> None:
    tag = KEY.mac(b"csrf", b"session 1")
    assert len(tag) == 32
    assert KEY.verify_mac(b"csrf", b"session 1", tag)
    assert not KEY.verify_mac(b"csrf", b"session 2", tag)
    assert not KEY.verify_mac(b"unsubscribe", b"session 1", tag)
    assert not KEY.verify_mac(b"csrf", b"session 1", tag[:-1])


def test_data_key_length() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        DataKey(bytes(31))
