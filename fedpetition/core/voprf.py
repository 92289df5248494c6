"""Verifiable oblivious PRF: RFC 9497, VOPRF mode (0x01), ciphersuite ristretto255-SHA512.

A client learns ``F(skS, input) = SHA-512(... skS * HashToGroup(input) ...)``
without the server learning ``input``, and a batched DLEQ proof shows that the
server used the key behind its published ``pkS`` (RFC 9497 §3.3.2). The owner of
``skS`` computes the same value directly with :func:`evaluate`.

Group arithmetic on ristretto255 (RFC 9496) comes from libsodium through
``rbcl``; this module adds what no library offers: ``expand_message_xmd`` with
SHA-512 (RFC 9380 §5.3.1) for HashToGroup and HashToScalar, the DLEQ proof with
ComputeCompositesFast / ComputeComposites (RFC 9497 §2.2), the context string
(§3.1) and the I2OSP length prefixes.

Every value crosses the API as bytes: elements are 32-byte ristretto255
encodings, scalars 32-byte little-endian integers below the group order, a
proof is ``c || s`` (64 bytes), an output 64 bytes.

Who is blamed for a bad value follows where it comes from:

* from the peer (blinded elements sent to the server; evaluated elements, the
  proof and ``pkS`` received by the client): :class:`DecodeError` for a bad
  encoding or the identity (RFC 9497 §3.3, §4.1), :class:`VoprfProofError` when
  the proof does not verify;
* from the caller's own state (``skS``, blinds, inputs, key seeds):
  :class:`LocalProtocolError`.

Batch sizes are bounded only by the protocol (I2OSP(i, 2) caps a batch at
65,536 elements); the work is linear in the batch, so callers that accept
batches from the network must impose their own, much smaller, bound.
The group arithmetic is libsodium's; secret scalars are checked through
libsodium's reduction and ``hmac.compare_digest``, never as Python integers, but
Python cannot erase them from memory.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

import rbcl

from fedpetition.core.errors import DecodeError, LocalProtocolError, RemoteProtocolError

__all__ = [
    "CONTEXT",
    "ELEMENT_SIZE",
    "MAX_BATCH",
    "MAX_INPUT_SIZE",
    "MODE_VOPRF",
    "OUTPUT_SIZE",
    "PROOF_SIZE",
    "SCALAR_SIZE",
    "SUITE_ID",
    "VoprfProofError",
    "blind",
    "blind_evaluate",
    "decode_element",
    "decode_scalar",
    "derive_key_pair",
    "evaluate",
    "expand_message_xmd",
    "finalize",
    "generate_key_pair",
]

# RFC 9497 §4.1: the ciphersuite identifier; §3.1: the mode.
SUITE_ID = "ristretto255-SHA512"
MODE_VOPRF = 0x01
# RFC 9497 §3.1 CreateContextString: "OPRFV1-" || I2OSP(mode, 1) || "-" || identifier.
CONTEXT = b"OPRFV1-" + MODE_VOPRF.to_bytes(1, "big") + b"-" + SUITE_ID.encode("ascii")

ELEMENT_SIZE = 32  # Ne, RFC 9497 §4.1
SCALAR_SIZE = 32  # Ns
OUTPUT_SIZE = 64  # Nh: SHA-512
PROOF_SIZE = 2 * SCALAR_SIZE  # §3.3: a Proof is two serialized scalars, c || s
# RFC 9497 §1.2: inputs are length-prefixed with two bytes.
MAX_INPUT_SIZE = 2**16 - 1
# RFC 9497 §2.2.1: the composite transcript holds I2OSP(i, 2) for i < m.
MAX_BATCH = 2**16

# RFC 9497 §4.1: the DSTs of HashToGroup and HashToScalar; §3.2.1 and §2.2.1.
_HASH_TO_GROUP_DST = b"HashToGroup-" + CONTEXT
_HASH_TO_SCALAR_DST = b"HashToScalar-" + CONTEXT
_DERIVE_KEY_PAIR_DST = b"DeriveKeyPair" + CONTEXT
_SEED_DST = b"Seed-" + CONTEXT

# RFC 9496 §4: the order of ristretto255 and its generator's encoding.
_ORDER = 2**252 + 27742317777372353535851937790883648493
_GENERATOR = bytes.fromhex("e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76")
_IDENTITY = bytes(ELEMENT_SIZE)  # RFC 9496 §4.3.2: the identity encodes as 32 zero bytes
_ZERO = bytes(SCALAR_SIZE)

# RFC 9380 §5.3.1 with H = SHA-512: b_in_bytes = 64, s_in_bytes = 128.
_SHA512_OUT = 64
_SHA512_BLOCK = 128


class VoprfProofError(RemoteProtocolError):
    """The server's batched DLEQ proof (RFC 9497 §2.2.2) does not verify.

    RFC 9497 calls this ``VerifyError``: the evaluated elements were not computed
    with the private key behind the public key the client trusts, so their
    outputs must not be used.
    """


# --------------------------------------------------------------------------- encodings


def _i2osp(value: int, length: int) -> bytes:
    """RFC 8017 §4.1 I2OSP, as RFC 9497 and RFC 9380 use it."""
    return value.to_bytes(length, "big")


def _prefixed(data: bytes) -> bytes:
    """``I2OSP(len(data), 2) || data``: the length prefix of every RFC 9497 transcript."""
    return _i2osp(len(data), 2) + data


def expand_message_xmd(msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
    """RFC 9380 §5.3.1 ``expand_message_xmd`` with SHA-512.

    ``dst`` must be 1 to 255 bytes (RFC 9380 §3.1, §5.3.3: the oversize-DST
    reduction is not needed here) and ``len_in_bytes`` between 1 and
    ``min(255 * 64, 65535)``.
    """
    if not 0 < len(dst) <= 255:
        raise LocalProtocolError(f"expand_message_xmd: DST of {len(dst)} bytes, want 1 to 255")
    ell = -(-len_in_bytes // _SHA512_OUT)
    if not 0 < len_in_bytes <= 65535 or ell > 255:
        raise LocalProtocolError(f"expand_message_xmd: cannot expand to {len_in_bytes} bytes")
    dst_prime = dst + _i2osp(len(dst), 1)
    msg_prime = bytes(_SHA512_BLOCK) + msg + _i2osp(len_in_bytes, 2) + b"\x00" + dst_prime
    b_0 = hashlib.sha512(msg_prime).digest()
    b_i = hashlib.sha512(b_0 + b"\x01" + dst_prime).digest()
    uniform = [b_i]
    for i in range(2, ell + 1):
        mixed = bytes(x ^ y for x, y in zip(b_0, b_i, strict=True))
        b_i = hashlib.sha512(mixed + _i2osp(i, 1) + dst_prime).digest()
        uniform.append(b_i)
    return b"".join(uniform)[:len_in_bytes]


def _check_input(data: bytes, what: str) -> None:
    """PrivateInput / PublicInput (RFC 9497 §1.2): bytes of at most 2^16 - 1."""
    if not isinstance(data, bytes):
        raise LocalProtocolError(f"{what}: expected bytes, got {type(data).__name__}")
    if len(data) > MAX_INPUT_SIZE:
        raise LocalProtocolError(f"{what}: {len(data)} bytes, at most {MAX_INPUT_SIZE} allowed")


def _is_canonical_scalar(buf: bytes) -> bool:
    """Whether 32 bytes are the little-endian encoding of an integer below the order.

    Compared through libsodium's reduction rather than Python integers, so that
    secret scalars take the same path whatever their value.
    """
    reduced = _scalar_reduce(buf + _ZERO)
    return hmac.compare_digest(reduced, buf)


def decode_scalar(buf: bytes, what: str = "scalar") -> bytes:
    """RFC 9497 §4.1 DeserializeScalar: 32 bytes, little-endian, below the group order.

    Raises :class:`DecodeError` otherwise (zero is a valid scalar here).
    """
    if not isinstance(buf, bytes) or len(buf) != SCALAR_SIZE:
        raise DecodeError(f"{what}: expected {SCALAR_SIZE} bytes")
    if not _is_canonical_scalar(buf):
        raise DecodeError(f"{what}: not a canonical scalar (not below the group order)")
    return buf


def decode_element(buf: bytes, what: str = "element") -> bytes:
    """RFC 9497 §4.1 DeserializeElement: a canonical ristretto255 encoding, not the identity.

    Raises :class:`DecodeError` for any other 32 bytes (RFC 9496 §4.3.1 Decode
    fails) and for the identity, which RFC 9497 §3.3 forbids on the wire.
    """
    if not isinstance(buf, bytes) or len(buf) != ELEMENT_SIZE:
        raise DecodeError(f"{what}: expected {ELEMENT_SIZE} bytes")
    # RFC 9496 §4.3.1 reads all 256 bits: s >= p fails. The libsodium bundled by
    # rbcl ignores the top bit, so that is checked here.
    if buf[-1] & 0x80 or not rbcl.crypto_core_ristretto255_is_valid_point(buf):
        raise DecodeError(f"{what}: not a canonical ristretto255 encoding")
    if hmac.compare_digest(buf, _IDENTITY):
        raise DecodeError(f"{what}: the identity element")
    return buf


def _secret_scalar(buf: bytes, what: str) -> bytes:
    """A non-zero scalar held by the caller (a private key, a blind, proof randomness)."""
    if not isinstance(buf, bytes) or len(buf) != SCALAR_SIZE or not _is_canonical_scalar(buf):
        raise LocalProtocolError(f"{what}: not a canonical {SCALAR_SIZE}-byte scalar")
    if hmac.compare_digest(buf, _ZERO):
        raise LocalProtocolError(f"{what}: zero")
    return buf


def _own_element(buf: bytes, what: str) -> bytes:
    """An element the caller computed itself: a bad one is the caller's bug."""
    try:
        return decode_element(buf, what)
    except DecodeError as e:
        raise LocalProtocolError(str(e)) from e


# --------------------------------------------------------------------------- group
# Typed wrappers around rbcl (which ships no type information). Every element
# passed in has been decoded; the identity is handled here because libsodium's
# scalar multiplication refuses to produce it.


def _scalar_reduce(wide: bytes) -> bytes:
    out: bytes = rbcl.crypto_core_ristretto255_scalar_reduce(wide)
    return out


def _scalar_mul(a: bytes, b: bytes) -> bytes:
    out: bytes = rbcl.crypto_core_ristretto255_scalar_mul(a, b)
    return out


def _scalar_sub(a: bytes, b: bytes) -> bytes:
    out: bytes = rbcl.crypto_core_ristretto255_scalar_sub(a, b)
    return out


def _scalar_invert(a: bytes) -> bytes:
    out: bytes = rbcl.crypto_core_ristretto255_scalar_invert(a)
    return out


def _random_scalar() -> bytes:
    """RFC 9497 §2.1 RandomScalar: uniform and non-zero (libsodium samples below the order)."""
    while True:
        out: bytes = rbcl.crypto_core_ristretto255_scalar_random()
        if not hmac.compare_digest(out, _ZERO):
            return out


def _mul(scalar: bytes, element: bytes) -> bytes:
    """``scalar * element``; zero and the identity give the identity."""
    if hmac.compare_digest(scalar, _ZERO) or hmac.compare_digest(element, _IDENTITY):
        return _IDENTITY
    out: bytes = rbcl.crypto_scalarmult_ristretto255(scalar, element)
    return out


def _mul_base(scalar: bytes) -> bytes:
    """RFC 9497 §2.1 ScalarMultGen."""
    if hmac.compare_digest(scalar, _ZERO):
        return _IDENTITY
    out: bytes = rbcl.crypto_scalarmult_ristretto255_base(scalar)
    return out


def _add(a: bytes, b: bytes) -> bytes:
    out: bytes = rbcl.crypto_core_ristretto255_add(a, b)
    return out


def _hash_to_group(msg: bytes) -> bytes:
    """RFC 9497 §4.1 HashToGroup: hash_to_ristretto255 (RFC 9380 Appendix B).

    expand_message_xmd to 64 bytes, then the ristretto255 one-way map
    (RFC 9496 §4.3.4), which is libsodium's ``from_hash``.
    """
    uniform = expand_message_xmd(msg, _HASH_TO_GROUP_DST, 64)
    out: bytes = rbcl.crypto_core_ristretto255_from_hash(uniform)
    return out


def _hash_to_scalar(msg: bytes, dst: bytes = _HASH_TO_SCALAR_DST) -> bytes:
    """RFC 9497 §4.1 HashToScalar: 64 uniform bytes, little-endian, reduced mod the order."""
    return _scalar_reduce(expand_message_xmd(msg, dst, 64))


# --------------------------------------------------------------------------- keys


def generate_key_pair() -> tuple[bytes, bytes]:
    """RFC 9497 §3.2 GenerateKeyPair: a random ``(skS, pkS)``."""
    sk = _random_scalar()
    return sk, _mul_base(sk)


def derive_key_pair(seed: bytes, info: bytes) -> tuple[bytes, bytes]:
    """RFC 9497 §3.2.1 DeriveKeyPair: ``(skS, pkS)`` from a secret 32-byte seed and public info."""
    if not isinstance(seed, bytes) or len(seed) != SCALAR_SIZE:
        raise LocalProtocolError(f"key seed: expected {SCALAR_SIZE} bytes")
    _check_input(info, "key info")
    derive_input = seed + _prefixed(info)
    for counter in range(256):
        sk = _hash_to_scalar(derive_input + _i2osp(counter, 1), _DERIVE_KEY_PAIR_DST)
        if not hmac.compare_digest(sk, _ZERO):
            return sk, _mul_base(sk)
    # 256 zero scalars in a row: probability 2^-64000, but the RFC names the error.
    raise LocalProtocolError("DeriveKeyPairError: no non-zero scalar in 256 tries")


# --------------------------------------------------------------------------- DLEQ (§2.2)


def _composite_weights(b: bytes, c: Sequence[bytes], d: Sequence[bytes]) -> list[bytes]:
    """The scalars d_i of ComputeComposites(Fast), RFC 9497 §2.2.1."""
    seed = hashlib.sha512(_prefixed(b) + _prefixed(_SEED_DST)).digest()
    return [
        _hash_to_scalar(
            _prefixed(seed) + _i2osp(i, 2) + _prefixed(ci) + _prefixed(di) + b"Composite"
        )
        for i, (ci, di) in enumerate(zip(c, d, strict=True))
    ]


def _compute_composites_fast(
    k: bytes, b: bytes, c: Sequence[bytes], d: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """RFC 9497 §2.2.1 ComputeCompositesFast: M = sum d_i C_i, Z = k M (the prover's shortcut)."""
    m = _IDENTITY
    for di, ci in zip(_composite_weights(b, c, d), c, strict=True):
        m = _add(_mul(di, ci), m)
    return m, _mul(k, m)


def _compute_composites(b: bytes, c: Sequence[bytes], d: Sequence[bytes]) -> tuple[bytes, bytes]:
    """RFC 9497 §2.2.2 ComputeComposites: M = sum d_i C_i, Z = sum d_i D_i."""
    m = _IDENTITY
    z = _IDENTITY
    for di, ci, dd in zip(_composite_weights(b, c, d), c, d, strict=True):
        m = _add(_mul(di, ci), m)
        z = _add(_mul(di, dd), z)
    return m, z


def _challenge(b: bytes, m: bytes, z: bytes, t2: bytes, t3: bytes) -> bytes:
    """The challenge c = HashToScalar(challengeTranscript), RFC 9497 §2.2.1."""
    transcript = b"".join(_prefixed(x) for x in (b, m, z, t2, t3)) + b"Challenge"
    return _hash_to_scalar(transcript)


def _generate_proof(
    k: bytes, a: bytes, b: bytes, c: Sequence[bytes], d: Sequence[bytes], r: bytes
) -> bytes:
    """RFC 9497 §2.2.1 GenerateProof, with A the generator: proof that k*A = B and k*C_i = D_i."""
    m, z = _compute_composites_fast(k, b, c, d)
    t2 = _mul(r, a)
    t3 = _mul(r, m)
    ch = _challenge(b, m, z, t2, t3)
    s = _scalar_sub(r, _scalar_mul(ch, k))
    return ch + s


def _verify_proof(
    a: bytes, b: bytes, c: Sequence[bytes], d: Sequence[bytes], ch: bytes, s: bytes
) -> bool:
    """RFC 9497 §2.2.2 VerifyProof."""
    m, z = _compute_composites(b, c, d)
    t2 = _add(_mul(s, a), _mul(ch, b))
    t3 = _add(_mul(s, m), _mul(ch, z))
    return hmac.compare_digest(_challenge(b, m, z, t2, t3), ch)


# --------------------------------------------------------------------------- protocol (§3.3)


def _finalize_hash(input: bytes, element: bytes) -> bytes:
    """The last step of Finalize and Evaluate, RFC 9497 §3.3.1."""
    return hashlib.sha512(_prefixed(input) + _prefixed(element) + b"Finalize").digest()


def _input_element(input: bytes) -> bytes:
    _check_input(input, "input")
    element = _hash_to_group(input)
    if hmac.compare_digest(element, _IDENTITY):
        # RFC 9497 §3.3.1 InvalidInputError: happens with negligible probability.
        raise LocalProtocolError("InvalidInputError: input maps to the identity element")
    return element


def blind(input: bytes, blind: bytes | None = None) -> tuple[bytes, bytes]:
    """Client, RFC 9497 §3.3.1 Blind: ``(blind, blindedElement)`` for one private input.

    ``blind`` is drawn at random unless given (only test vectors should give it).
    The client keeps ``blind`` and sends ``blindedElement``.
    """
    element = _input_element(input)
    r = _random_scalar() if blind is None else _secret_scalar(blind, "blind")
    return r, _mul(r, element)


def blind_evaluate(
    skS: bytes, pkS: bytes, blinded_elements: Sequence[bytes], r: bytes | None = None
) -> tuple[list[bytes], bytes]:
    """Server, RFC 9497 §3.3.2 BlindEvaluate, batched: ``(evaluatedElements, proof)``.

    One proof covers the whole batch (§2.2). ``blinded_elements`` come from the
    client: a bad encoding, the identity or an empty or oversized batch raises
    :class:`DecodeError`. ``pkS`` must be the public key of ``skS``. ``r`` is
    the proof's randomness, drawn at random unless given (test vectors only).
    """
    k = _secret_scalar(skS, "private key")
    if _own_element(pkS, "public key") != _mul_base(k):
        raise LocalProtocolError("public key: not the public key of the private key")
    if not blinded_elements:
        raise DecodeError("blinded elements: empty batch")
    if len(blinded_elements) > MAX_BATCH:
        raise DecodeError(f"blinded elements: {len(blinded_elements)}, at most {MAX_BATCH}")
    c = [decode_element(x, f"blinded element {i}") for i, x in enumerate(blinded_elements)]
    d = [_mul(k, ci) for ci in c]
    nonce = _random_scalar() if r is None else _secret_scalar(r, "proof randomness")
    return d, _generate_proof(k, _GENERATOR, pkS, c, d, nonce)


def finalize(
    inputs: Sequence[bytes],
    blinds: Sequence[bytes],
    evaluated_elements: Sequence[bytes],
    blinded_elements: Sequence[bytes],
    proof: bytes,
    pkS: bytes,
) -> list[bytes]:
    """Client, RFC 9497 §3.3.2 Finalize, batched: the 64-byte output for each input.

    The proof is checked for the whole batch first; only then are the outputs
    computed. ``inputs``, ``blinds`` and ``blinded_elements`` are the client's
    own, from :func:`blind`, in the order sent. ``evaluated_elements``,
    ``proof`` and ``pkS`` come from the server (``pkS`` as published): a bad
    encoding, the identity or a wrong count raises :class:`DecodeError`, a
    failing proof :class:`VoprfProofError`.
    """
    n = len(inputs)
    if n == 0 or len(blinds) != n or len(blinded_elements) != n:
        raise LocalProtocolError(
            f"finalize: {n} inputs, {len(blinds)} blinds and {len(blinded_elements)}"
            " blinded elements; want the same non-zero number of each"
        )
    if n > MAX_BATCH:
        raise LocalProtocolError(f"finalize: {n} inputs, at most {MAX_BATCH}")
    for i, x in enumerate(inputs):
        _check_input(x, f"input {i}")
    rs = [_secret_scalar(x, f"blind {i}") for i, x in enumerate(blinds)]
    c = [_own_element(x, f"blinded element {i}") for i, x in enumerate(blinded_elements)]
    pk = decode_element(pkS, "public key")
    if len(evaluated_elements) != n:
        raise DecodeError(f"evaluated elements: {len(evaluated_elements)} for {n} blinded elements")
    d = [decode_element(x, f"evaluated element {i}") for i, x in enumerate(evaluated_elements)]
    if not isinstance(proof, bytes) or len(proof) != PROOF_SIZE:
        raise DecodeError(f"proof: expected {PROOF_SIZE} bytes")
    ch = decode_scalar(proof[:SCALAR_SIZE], "proof challenge")
    s = decode_scalar(proof[SCALAR_SIZE:], "proof response")
    if not _verify_proof(_GENERATOR, pk, c, d, ch, s):
        raise VoprfProofError(
            f"proof does not verify for {n} evaluated element(s) under public key {pkS.hex()}"
        )
    return [
        _finalize_hash(x, _mul(_scalar_invert(r), di))
        for x, r, di in zip(inputs, rs, d, strict=True)
    ]


def evaluate(skS: bytes, input: bytes) -> bytes:
    """Server, RFC 9497 §3.3.1 Evaluate (also VOPRF's, §3.3.2): the output without blinding.

    Equal to what :func:`finalize` gives a client for the same input and key.
    """
    k = _secret_scalar(skS, "private key")
    return _finalize_hash(input, _mul(k, _input_element(input)))
