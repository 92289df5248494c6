"""The node's two secrets, each in a file only the node's user may read.

* The **node key** signs the node's checkpoints and documents: an Ed25519 key in the
  Go sumdb/note ``PRIVATE+KEY+<name>+<key ID>+<base64>`` encoding, named after the
  node (spec §2.1, §5).
* The **data key** protects personal data at rest: 32 random bytes (base64 text)
  from which :class:`DataKey` derives one subkey per purpose, so that a database
  dump without the key file reveals no signer's name or email.

Key files are created with mode 0600 and never overwritten; loading refuses a file
that group or others can access, as a leaked node key lets anyone sign as the node.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fedpetition.core.addresses import canonical_mailbox
from fedpetition.core.errors import DecodeError, LocalProtocolError
from fedpetition.core.names import check_node_name
from fedpetition.core.notes import Signer
from fedpetition.core.nullifiers import petition_key_pair
from fedpetition.node.errors import AddressError, ConfigError, SealError
from fedpetition.node.mail import normalise_email

__all__ = [
    "DATA_KEY_BYTES",
    "DataKey",
    "create_data_key",
    "create_node_key",
    "load_data_key",
    "load_node_key",
]

DATA_KEY_BYTES = 32
_SEED_BYTES = 32
_NONCE_BYTES = 12  # AES-GCM's 96-bit nonce
_TAG_BYTES = 16
# A key file is one short line; refuse to read anything much larger.
_MAX_KEY_FILE_BYTES = 4096

# HKDF "info" strings: one subkey per purpose, so no value computed for one purpose
# can stand in for another (an email index is never a valid nullifier, say).
INFO_SEAL = b"fedpetition seal v1"
INFO_EMAIL_INDEX = b"fedpetition email index v1"
INFO_NULLIFIER = b"fedpetition nullifier v1"
INFO_TOKEN = b"fedpetition token v1"


# --------------------------------------------------------------------------- key files


def _write_secret(path: Path, text: str, what: str) -> None:
    """Create ``path`` with mode 0600 holding ``text``; never replace an existing file."""
    path = Path(path)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(
            f"{path}: a {what} already exists; refusing to overwrite it "
            "(move it away first if you really mean to replace it)"
        ) from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot create the {what}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), 0o600)  # the umask may have removed bits; set exactly
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
    except BaseException as e:
        # A half-written key must not be mistaken for a key on the next start.
        path.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise ConfigError(f"{path}: cannot write the {what}: {e.strerror or e}") from None
        raise


def _read_secret(path: Path, what: str) -> str:
    """The stripped text of a private key file, after checking its type and mode."""
    path = Path(path)
    try:
        # O_NONBLOCK: a FIFO planted at the path must not hang the start-up.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: {what} not found (create it with `fedpetition init`, "
            "or fix its path in [keys])"
        ) from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    try:
        # fstat on the open file: the checks apply to the very file that is read.
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{path}: the {what} is not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if os.name == "posix" and mode & 0o077:
            raise ConfigError(
                f"{path}: the {what} is accessible by group or others (mode {mode:04o}); "
                f"run: chmod 600 {path}"
            )
        data = os.read(fd, _MAX_KEY_FILE_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    finally:
        os.close(fd)
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise ConfigError(f"{path}: too large to be a {what}")
    try:
        return data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the {what} is not ASCII text") from None


def create_node_key(path: Path, name: str, seed: bytes | None = None) -> Signer:
    """Create the node's Ed25519 key file named ``name``; ``seed`` is for tests only."""
    try:
        check_node_name(name)
    except DecodeError as e:
        raise ConfigError(f"{path}: cannot create a node key: {e}") from None
    signer = Signer(name, secrets.token_bytes(_SEED_BYTES) if seed is None else seed)
    _write_secret(path, signer.private_key_string(), "node key")
    return signer


def load_node_key(path: Path, expected_name: str) -> Signer:
    """Load the node key and check it belongs to ``expected_name`` (``[node] name``).

    A node started under a new name with its old key would sign checkpoints that no
    verifier accepts, so the mismatch stops it at start-up instead.
    """
    text = _read_secret(path, "node key")
    try:
        signer = Signer.from_private_key_string(text)
    except (DecodeError, LocalProtocolError) as e:
        # These messages never quote the key itself.
        raise ConfigError(f"{path}: not a valid node key: {e}") from None
    if signer.name != expected_name:
        raise ConfigError(
            f"{path}: this key belongs to node {signer.name!r}, "
            f"but [node] name is {expected_name!r}"
        )
    return signer


def create_data_key(path: Path) -> DataKey:
    """Create the data-at-rest key file: 32 random bytes as base64 text, mode 0600."""
    key = DataKey(secrets.token_bytes(DATA_KEY_BYTES))
    _write_secret(path, base64.b64encode(key.master).decode("ascii"), "data key")
    return key


def load_data_key(path: Path) -> DataKey:
    """Load the data-at-rest key, with the same file checks as the node key."""
    text = _read_secret(path, "data key")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{path}: the data key is not base64") from None
    if len(raw) != DATA_KEY_BYTES:
        raise ConfigError(f"{path}: the data key is {len(raw)} bytes, want {DATA_KEY_BYTES}")
    return DataKey(raw)


# --------------------------------------------------------------------------- the data key


def _length_prefixed(*parts: bytes) -> bytes:
    """Each part preceded by its 4-byte length, so ("ab", "c") and ("a", "bc") differ."""
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def _hkdf(master: bytes, info: bytes) -> bytes:
    # No salt: the master key is already uniformly random (RFC 5869 §3.1).
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


class DataKey:
    """The node's data-at-rest key and the subkeys derived from it (HKDF-SHA256).

    * :meth:`seal` / :meth:`open`: AES-256-GCM for the personal data in a row;
    * :meth:`email_index`: finds a signer's row without storing their email in clear;
    * :meth:`oprf_key_pair`: the VOPRF key of each petition the node starts (spec §4.4);
    * :meth:`mac`: tags for CSRF tokens and other values the node hands out and
      must recognise later.
    """

    __slots__ = ("_aead", "_index_key", "_master", "_nullifier_key", "_oprf_pairs", "_token_key")

    def __init__(self, master: bytes) -> None:
        if not isinstance(master, bytes) or len(master) != DATA_KEY_BYTES:
            raise ValueError(f"a data key is {DATA_KEY_BYTES} bytes")
        self._master = master
        self._aead = AESGCM(_hkdf(master, INFO_SEAL))
        self._index_key = _hkdf(master, INFO_EMAIL_INDEX)
        self._nullifier_key = _hkdf(master, INFO_NULLIFIER)
        self._token_key = _hkdf(master, INFO_TOKEN)
        self._oprf_pairs: dict[str, tuple[bytes, bytes]] = {}

    def __repr__(self) -> str:
        return "DataKey(<secret>)"

    @property
    def master(self) -> bytes:
        """The 32-byte master key, for writing the key file; keep it secret."""
        return self._master

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        """Encrypt ``plaintext`` bound to ``context``: ``nonce (12) || ciphertext || tag (16)``.

        ``context`` (e.g. the row's petition and email index) is authenticated but
        not stored, so a sealed value copied into another row does not open there.
        Random nonces are safe for far more than 2^32 values under one key.
        """
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, context)

    def open(self, sealed: bytes, context: bytes) -> bytes:
        """Decrypt a value from :meth:`seal` under the same ``context``; else SealError."""
        if len(sealed) < _NONCE_BYTES + _TAG_BYTES:
            raise SealError("sealed value is too short")
        try:
            return self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], context)
        except InvalidTag:
            raise SealError(
                "sealed value does not open: tampered, moved from another row, "
                "or sealed under another data key"
            ) from None

    def email_index(self, petition_id: str, mailbox: str) -> bytes:
        """A 32-byte HMAC naming a signer's row for one petition, by canonical mailbox.

        ``mailbox`` is ``canonical_mailbox(normalise_email(address))`` (spec §4.6), so
        that an alias of a mailbox that already signed finds the same row. Lets the
        node find "has this mailbox signed this petition?" with an indexed lookup
        while the database holds no address in clear. Per petition, so the index
        does not link a person's rows across petitions.
        """
        return _hmac(self._index_key, _signer_message(petition_id, mailbox))

    def oprf_key_pair(self, petition_id: str) -> tuple[bytes, bytes]:
        """This node's VOPRF key pair (skS, pkS) for a petition it starts (spec §4.4).

        Derived, never stored on disk: the same data key gives the same key again, and
        the public key goes into the petition's signed versions. Kept in memory once
        derived (a scalar multiplication, on every confirmation otherwise).
        """
        pair = self._oprf_pairs.get(petition_id)
        if pair is None:
            pair = self._oprf_pairs[petition_id] = petition_key_pair(self._nullifier_key,
                                                                     petition_id)
        return pair

    def mac(self, purpose: bytes, data: bytes) -> bytes:
        """A 32-byte tag over ``data`` for one ``purpose`` (e.g. b"csrf")."""
        return _hmac(self._token_key, _length_prefixed(purpose, data))

    def verify_mac(self, purpose: bytes, data: bytes, tag: bytes) -> bool:
        """Whether ``tag`` is :meth:`mac` of ``data``, compared in constant time."""
        return hmac.compare_digest(self.mac(purpose, data), tag)


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.digest(key, message, "sha256")


def _signer_message(petition_id: str, mailbox: str) -> bytes:
    """The HMAC input for a (petition, signer) pair, refusing a non-canonical address.

    ``Alice@x`` and ``alice@x``, or ``a.b@gmail.com`` and ``ab@gmail.com``, keyed
    apart would be two signers: a bug worth an exception rather than a silent
    duplicate. A canonical mailbox is a normalised address (spec §4.6), so it
    passes ``normalise_email`` unchanged.
    """
    try:
        canonical = canonical_mailbox(normalise_email(mailbox))
    except AddressError:
        canonical = None
    if canonical != mailbox:
        raise ValueError("expected canonical_mailbox(normalise_email(address))")
    return _length_prefixed(petition_id.encode("utf-8"), mailbox.encode("utf-8"))
