"""Tests for fedpetition.core.voprf: RFC 9497 VOPRF mode, ristretto255-SHA512.

Vectors and where they come from:

* RFC 9497 Appendix A.1.2 (ristretto255-SHA512, VOPRF Mode): the key material
  and test vectors 1, 2 (batch size 1) and 3 (batch size 2). Copied from the
  RFC's source, github.com/cfrg/draft-irtf-cfrg-voprf at commit
  43da59f797c92248c0362e4c74cc10a8bd2b7b7d, draft-irtf-cfrg-voprf.md section
  "Test Vectors" > "ristretto255-SHA512" > "VOPRF Mode"; identical to the
  mode-1 ristretto255-SHA512 entry of poc/vectors/allVectors.json in the same
  commit ("Proof"/"r" there is "Proof"/"ProofRandomScalar" here), whose
  groupDST is also checked below.
* RFC 9380 Appendix K.3 (expand_message_xmd(SHA-512), DST
  "QUUX-V01-CS02-with-expander-SHA512-256"): from the RFC's source,
  github.com/cfrg/draft-irtf-cfrg-hash-to-curve at commit
  664b13592116cecc9e52fb192dcde0ade36f904e, poc/vectors/
  expand_message_xmd_SHA512_38.json (same values as the appendix text in
  draft-irtf-cfrg-hash-to-curve.md there).
* RFC 9496 Appendix A.2 (invalid ristretto255 encodings), as reproduced in
  libsodium's test/default/core_ristretto255.c (github.com/jedisct1/libsodium
  at 011343e88c778f67ec1416f16a9ff3412505786c, bad_encodings_hex), plus two
  encodings with the top bit set, which that libsodium accepts and we refuse.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpetition.core import voprf
from fedpetition.core.errors import DecodeError, LocalProtocolError, RemoteProtocolError
from fedpetition.core.voprf import (
    CONTEXT,
    ELEMENT_SIZE,
    MAX_INPUT_SIZE,
    MODE_VOPRF,
    OUTPUT_SIZE,
    PROOF_SIZE,
    SCALAR_SIZE,
    SUITE_ID,
    VoprfProofError,
    blind,
    blind_evaluate,
    decode_element,
    decode_scalar,
    derive_key_pair,
    evaluate,
    expand_message_xmd,
    finalize,
    generate_key_pair,
)

# --------------------------------------------------------------------------- vectors

# RFC 9497 Appendix A.1.2, VOPRF Mode (see the module docstring for the source).
SEED = bytes.fromhex("a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3")
KEY_INFO = bytes.fromhex("74657374206b6579")  # "test key"
SK_SM = bytes.fromhex("e6f73f344b79b379f1a0dd37e07ff62e38d9f71345ce62ae3a9bc60b04ccd909")
PK_SM = bytes.fromhex("c803e2cc6b05fc15064549b5920659ca4a77b2cca6f04f6b357009335476ad4e")
# allVectors.json "groupDST": "HashToGroup-" || contextString.
GROUP_DST = bytes.fromhex(
    "48617368546f47726f75702d4f50524656312d012d72697374726574746f3235352d534841353132"
)

INPUT_1 = bytes.fromhex("00")
INPUT_2 = bytes.fromhex("5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a")
BLIND_1 = bytes.fromhex("64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706")
BLIND_2 = bytes.fromhex("222a5e897cf59db8145db8d16e597e8facb80ae7d4e26d9881aa6f61d645fc0e")
OUTPUT_1 = bytes.fromhex(
    "b58cfbe118e0cb94d79b5fd6a6dafb98764dff49c14e1770b566e42402da1a7d"
    "a4d8527693914139caee5bd03903af43a491351d23b430948dd50cde10d32b3c"
)
OUTPUT_2 = bytes.fromhex(
    "8a9a2f3c7f085b65933594309041fc1898d42d0858e59f90814ae90571a6df60"
    "356f4610bf816f27afdd84f47719e480906d27ecd994985890e5f539e7ea74b6"
)

# (name, Input, Blind, BlindedElement, EvaluationElement, Proof, ProofRandomScalar, Output)
VECTORS = [
    (
        "A.1.2.1 test vector 1, batch size 1",
        [INPUT_1],
        [BLIND_1],
        ["863f330cc1a1259ed5a5998a23acfd37fb4351a793a5b3c090b642ddc439b945"],
        ["aa8fa048764d5623868679402ff6108d2521884fa138cd7f9c7669a9a014267e"],
        "ddef93772692e535d1a53903db24367355cc2cc78de93b3be5a8ffcc6985dd06"
        "6d4346421d17bf5117a2a1ff0fcb2a759f58a539dfbe857a40bce4cf49ec600d",
        "222a5e897cf59db8145db8d16e597e8facb80ae7d4e26d9881aa6f61d645fc0e",
        [OUTPUT_1],
    ),
    (
        "A.1.2.2 test vector 2, batch size 1",
        [INPUT_2],
        [BLIND_1],
        ["cc0b2a350101881d8a4cba4c80241d74fb7dcbfde4a61fde2f91443c2bf9ef0c"],
        ["60a59a57208d48aca71e9e850d22674b611f752bed48b36f7a91b372bd7ad468"],
        "401a0da6264f8cf45bb2f5264bc31e109155600babb3cd4e5af7d181a2c9dc0a"
        "67154fabf031fd936051dec80b0b6ae29c9503493dde7393b722eafdf5a50b02",
        "222a5e897cf59db8145db8d16e597e8facb80ae7d4e26d9881aa6f61d645fc0e",
        [OUTPUT_2],
    ),
    (
        "A.1.2.3 test vector 3, batch size 2",
        [INPUT_1, INPUT_2],
        [BLIND_1, BLIND_2],
        [
            "863f330cc1a1259ed5a5998a23acfd37fb4351a793a5b3c090b642ddc439b945",
            "90a0145ea9da29254c3a56be4fe185465ebb3bf2a1801f7124bbbadac751e654",
        ],
        [
            "aa8fa048764d5623868679402ff6108d2521884fa138cd7f9c7669a9a014267e",
            "cc5ac221950a49ceaa73c8db41b82c20372a4c8d63e5dded2db920b7eee36a2a",
        ],
        "cc203910175d786927eeb44ea847328047892ddf8590e723c37205cb74600b0a"
        "5ab5337c8eb4ceae0494c2cf89529dcf94572ed267473d567aeed6ab873dee08",
        "419c4f4f5052c53c45f3da494d2b67b220d02118e0857cdbcf037f9ea84bbe0c",
        [OUTPUT_1, OUTPUT_2],
    ),
]

# RFC 9380 Appendix K.3: expand_message_xmd(SHA-512), (msg, len_in_bytes, uniform_bytes).
XMD_DST = b"QUUX-V01-CS02-with-expander-SHA512-256"
Q128 = b"q128_" + b"q" * 128
A512 = b"a512_" + b"a" * 512
XMD_VECTORS = [
    (b"", 0x20, "6b9a7312411d92f921c6f68ca0b6380730a1a4d982c507211a90964c394179ba"),
    (b"abc", 0x20, "0da749f12fbe5483eb066a5f595055679b976e93abe9be6f0f6318bce7aca8dc"),
    (
        b"abcdef0123456789",
        0x20,
        "087e45a86e2939ee8b91100af1583c4938e0f5fc6c9db4b107b83346bc967f58",
    ),
    (Q128, 0x20, "7336234ee9983902440f6bc35b348352013becd88938d2afec44311caf8356b3"),
    (A512, 0x20, "57b5f7e766d5be68a6bfe1768e3c2b7f1228b3e4b3134956dd73a59b954c66f4"),
    (
        b"",
        0x80,
        "41b037d1734a5f8df225dd8c7de38f851efdb45c372887be655212d07251b921"
        "b052b62eaed99b46f72f2ef4cc96bfaf254ebbbec091e1a3b9e4fb5e5b619d2e"
        "0c5414800a1d882b62bb5cd1778f098b8eb6cb399d5d9d18f5d5842cf5d13d7e"
        "b00a7cff859b605da678b318bd0e65ebff70bec88c753b159a805d2c89c55961",
    ),
    (
        b"abc",
        0x80,
        "7f1dddd13c08b543f2e2037b14cefb255b44c83cc397c1786d975653e36a6b11"
        "bdd7732d8b38adb4a0edc26a0cef4bb45217135456e58fbca1703cd6032cb134"
        "7ee720b87972d63fbf232587043ed2901bce7f22610c0419751c065922b48843"
        "1851041310ad659e4b23520e1772ab29dcdeb2002222a363f0c2b1c972b3efe1",
    ),
    (
        b"abcdef0123456789",
        0x80,
        "3f721f208e6199fe903545abc26c837ce59ac6fa45733f1baaf0222f8b7acb04"
        "24814fcb5eecf6c1d38f06e9d0a6ccfbf85ae612ab8735dfdf9ce84c372a77c8"
        "f9e1c1e952c3a61b7567dd0693016af51d2745822663d0c2367e3f4f0bed827f"
        "eecc2aaf98c949b5ed0d35c3f1023d64ad1407924288d366ea159f46287e61ac",
    ),
    (
        Q128,
        0x80,
        "b799b045a58c8d2b4334cf54b78260b45eec544f9f2fb5bd12fb603eaee70db7"
        "317bf807c406e26373922b7b8920fa29142703dd52bdf280084fb7ef69da78af"
        "df80b3586395b433dc66cde048a258e476a561e9deba7060af40adf30c64249c"
        "a7ddea79806ee5beb9a1422949471d267b21bc88e688e4014087a0b592b695ed",
    ),
    (
        A512,
        0x80,
        "05b0bfef265dcee87654372777b7c44177e2ae4c13a27f103340d9cd11c86cb2"
        "426ffcad5bd964080c2aee97f03be1ca18e30a1f14e27bc11ebbd650f305269c"
        "c9fb1db08bf90bfc79b42a952b46daf810359e7bc36452684784a64952c343c5"
        "2e5124cd1f71d474d5197fefc571a92929c9084ffe1112cf5eea5192ebff330b",
    ),
]

# RFC 9496 Appendix A.2, via libsodium test/default/core_ristretto255.c (see above).
BAD_ENCODINGS = [
    # Non-canonical field encodings.
    "00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "f3ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    # Negative field elements.
    "0100000000000000000000000000000000000000000000000000000000000000",
    "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "ed57ffd8c914fb201471d1c3d245ce3c746fcbe63a3679d51b6a516ebebe0e20",
    "c34c4e1826e5d403b78e246e88aa051c36ccf0aafebffe137d148a2bf9104562",
    "c940e5a4404157cfb1628b108db051a8d439e1a421394ec4ebccb9ec92a8ac78",
    "47cfc5497c53dc8e61c91d17fd626ffb1c49e2bca94eed052281b510b1117a24",
    "f1c6165d33367351b0da8f6e4511010c68174a03b6581212c71c0e1d026c3c72",
    "87260f7a2f12495118360f02c26a470f450dadf34a413d21042b43b9d93e1309",
    # Non-square x^2.
    "26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371",
    "4eac077a713c57b4f4397629a4145982c661f48044dd3f96427d40b147d9742f",
    "de6a7b00deadc788eb6b6c8d20c0ae96c2f2019078fa604fee5b87d6e989ad7b",
    "bcab477be20861e01e4a0e295284146a510150d9817763caf1a6f4b422d67042",
    "2a292df7e32cababbd9de088d1d1abec9fc0440f637ed2fba145094dc14bea08",
    "f4a9e534fc0d216c44b218fa0c42d99635a0127ee2e53c712f70609649fdff22",
    "8268436f8c4126196cf64b3c7ddbda90746a378625f9813dd9b8457077256731",
    "2810e5cbc2cc4d4eece54f61c6f69758e289aa7ab440b3cbeaa21995c2f4232b",
    # Negative xy value.
    "3eb858e78f5a7254d8c9731174a94f76755fd3941c0ac93735c07ba14579630e",
    "a45fdc55c76448c049a1ab33f17023edfb2be3581e9c7aade8a6125215e04220",
    "d483fe813c6ba647ebbfd3ec41adca1c6130c2beeee9d9bf065c8d151c5f396e",
    "8a2e1d30050198c65a54483123960ccc38aef6848e1ec8f5f780e8523769ba32",
    "32888462f8b486c68ad7dd9610be5192bbeaf3b443951ac1a8118419d9fa097b",
    "227142501b9d4355ccba290404bde41575b037693cef1f438c47f8fbf35d1165",
    "5c37cc491da847cfeb9281d407efc41e15144c876e0170b499a96a22ed31e01e",
    "445425117cb8c90edcbc7c1cc0e74f747f2c1efa5630a967c64f287792a48a4b",
    # s = -1, which causes y = 0.
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
]
# RFC 9496 §4.2: the generator. With its top bit set it is 2^255 + s >= p, which
# RFC 9496 §4.3.1 rejects; the libsodium bundled by rbcl does not.
GENERATOR = bytes.fromhex("e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76")
GENERATOR_TOP_BIT = GENERATOR[:-1] + bytes([GENERATOR[-1] | 0x80])
IDENTITY = bytes(32)

ORDER = 2**252 + 27742317777372353535851937790883648493


def _h(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def _le(n: int) -> bytes:
    return n.to_bytes(32, "little")


# --------------------------------------------------------------------------- constants and keys


def test_context_string() -> None:
    assert SUITE_ID == "ristretto255-SHA512"
    assert MODE_VOPRF == 0x01
    assert CONTEXT == b"OPRFV1-\x01-ristretto255-SHA512"
    assert GROUP_DST == b"HashToGroup-" + CONTEXT
    assert (ELEMENT_SIZE, SCALAR_SIZE, OUTPUT_SIZE, PROOF_SIZE) == (32, 32, 64, 64)


def test_derive_key_pair_rfc9497_vector() -> None:
    assert derive_key_pair(SEED, KEY_INFO) == (SK_SM, PK_SM)


def test_derive_key_pair_depends_on_seed_and_info() -> None:
    keys = {
        derive_key_pair(SEED, KEY_INFO),
        derive_key_pair(SEED, b""),
        derive_key_pair(bytes(32), KEY_INFO),
    }
    assert len(keys) == 3


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33)])
def test_derive_key_pair_wants_a_32_byte_seed(seed: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        derive_key_pair(seed, KEY_INFO)


def test_derive_key_pair_refuses_oversized_info() -> None:
    with pytest.raises(LocalProtocolError):
        derive_key_pair(SEED, bytes(MAX_INPUT_SIZE + 1))


def test_generate_key_pair_is_random_and_consistent() -> None:
    (sk1, pk1), (sk2, pk2) = generate_key_pair(), generate_key_pair()
    assert sk1 != sk2 and pk1 != pk2
    assert decode_scalar(sk1) == sk1 and decode_element(pk1) == pk1
    # blind_evaluate refuses a public key that is not skS's.
    blinded = blind(b"x")[1]
    blind_evaluate(sk1, pk1, [blinded])
    with pytest.raises(LocalProtocolError):
        blind_evaluate(sk1, pk2, [blinded])


# --------------------------------------------------------------------------- expand_message_xmd


@pytest.mark.parametrize(("msg", "length", "expected"), XMD_VECTORS)
def test_expand_message_xmd_rfc9380_k3(msg: bytes, length: int, expected: str) -> None:
    assert expand_message_xmd(msg, XMD_DST, length).hex() == expected


@pytest.mark.parametrize(
    ("dst", "length"),
    [(b"", 32), (b"x" * 256, 32), (b"x", 0), (b"x", 255 * 64 + 1), (b"x", 65536)],
)
def test_expand_message_xmd_limits(dst: bytes, length: int) -> None:
    with pytest.raises(LocalProtocolError):
        expand_message_xmd(b"msg", dst, length)


def test_expand_message_xmd_longest() -> None:
    out = expand_message_xmd(b"msg", b"x" * 255, 255 * 64)
    assert len(out) == 255 * 64
    assert out[:64] != expand_message_xmd(b"msg", b"x" * 255, 64)  # length is bound in


# --------------------------------------------------------------------------- RFC 9497 vectors


@pytest.mark.parametrize(
    ("inputs", "blinds", "blinded", "evaluated", "proof", "r", "outputs"),
    [v[1:] for v in VECTORS],
    ids=[v[0] for v in VECTORS],
)
def test_rfc9497_voprf_vectors(
    inputs: list[bytes],
    blinds: list[bytes],
    blinded: list[str],
    evaluated: list[str],
    proof: str,
    r: str,
    outputs: list[bytes],
) -> None:
    # Client: Blind, with the vector's blinds.
    got_blinded = []
    for x, b in zip(inputs, blinds, strict=True):
        got_blind, element = blind(x, b)
        assert got_blind == b
        got_blinded.append(element)
    assert got_blinded == _h(blinded)

    # Server: BlindEvaluate, with the vector's proof randomness.
    got_evaluated, got_proof = blind_evaluate(SK_SM, PK_SM, got_blinded, bytes.fromhex(r))
    assert got_evaluated == _h(evaluated)
    assert got_proof.hex() == proof

    # Client: Finalize verifies the vector's proof and gives the outputs.
    got = finalize(inputs, blinds, _h(evaluated), _h(blinded), bytes.fromhex(proof), PK_SM)
    assert got == outputs

    # Server: Evaluate gives the same outputs directly.
    assert [evaluate(SK_SM, x) for x in inputs] == outputs


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("size", [1, 2, 7])
def test_round_trip_random(size: int) -> None:
    sk, pk = generate_key_pair()
    inputs = [f"signer-{i}@example.org".encode() for i in range(size)]
    client = [blind(x) for x in inputs]
    blinds = [c[0] for c in client]
    blinded = [c[1] for c in client]
    evaluated, proof = blind_evaluate(sk, pk, blinded)
    outputs = finalize(inputs, blinds, evaluated, blinded, proof, pk)
    assert outputs == [evaluate(sk, x) for x in inputs]
    assert all(len(o) == OUTPUT_SIZE for o in outputs)
    assert len(set(outputs)) == size


def test_randomness_is_fresh() -> None:
    b1, e1 = blind(INPUT_1)
    b2, e2 = blind(INPUT_1)
    assert b1 != b2 and e1 != e2
    d1, p1 = blind_evaluate(SK_SM, PK_SM, [e1])
    d2, p2 = blind_evaluate(SK_SM, PK_SM, [e1])
    assert d1 == d2 and p1 != p2  # same evaluation, fresh proof randomness
    assert finalize([INPUT_1], [b1], d1, [e1], p1, PK_SM) == [OUTPUT_1]
    assert finalize([INPUT_1], [b1], d2, [e1], p2, PK_SM) == [OUTPUT_1]


def test_longest_input() -> None:
    x = b"\x07" * MAX_INPUT_SIZE
    b, e = blind(x)
    d, p = blind_evaluate(SK_SM, PK_SM, [e])
    assert finalize([x], [b], d, [e], p, PK_SM) == [evaluate(SK_SM, x)]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    inputs=st.lists(st.binary(max_size=80), min_size=1, max_size=4),
)
def test_finalize_equals_evaluate_property(seed: bytes, inputs: list[bytes]) -> None:
    sk, pk = derive_key_pair(seed, b"hypothesis")
    client = [blind(x) for x in inputs]
    evaluated, proof = blind_evaluate(sk, pk, [c[1] for c in client])
    outputs = finalize(inputs, [c[0] for c in client], evaluated, [c[1] for c in client], proof, pk)
    assert outputs == [evaluate(sk, x) for x in inputs]


# --------------------------------------------------------------------------- a lying server

BATCH = VECTORS[2]
B_INPUTS: list[bytes] = BATCH[1]
B_BLINDS: list[bytes] = BATCH[2]
B_BLINDED = _h(BATCH[3])
B_EVALUATED = _h(BATCH[4])
B_PROOF = bytes.fromhex(BATCH[5])


def _finalize_batch(
    evaluated: list[bytes] = B_EVALUATED, proof: bytes = B_PROOF, pk: bytes = PK_SM
) -> list[bytes]:
    return finalize(B_INPUTS, B_BLINDS, evaluated, B_BLINDED, proof, pk)


def test_untampered_batch_verifies() -> None:
    assert _finalize_batch() == [OUTPUT_1, OUTPUT_2]


@pytest.mark.parametrize("index", [0, 1, 31, 32, 33, 62])
def test_tampered_proof_is_refused(index: int) -> None:
    proof = bytearray(B_PROOF)
    proof[index] ^= 0x01  # stays a canonical scalar: the proof itself fails
    with pytest.raises(VoprfProofError):
        _finalize_batch(proof=bytes(proof))


def test_tampered_evaluated_element_is_refused() -> None:
    # Another valid element in place of the second evaluation.
    with pytest.raises(VoprfProofError):
        _finalize_batch(evaluated=[B_EVALUATED[0], GENERATOR])


def test_swapped_evaluated_elements_are_refused() -> None:
    with pytest.raises(VoprfProofError):
        _finalize_batch(evaluated=B_EVALUATED[::-1])


def test_wrong_public_key_is_refused() -> None:
    _, other_pk = derive_key_pair(SEED, b"another key")
    with pytest.raises(VoprfProofError):
        _finalize_batch(pk=other_pk)


def test_evaluation_under_another_key_is_refused() -> None:
    # A server that evaluates one client under a different key (to tag it) cannot
    # prove it against the published key.
    other_sk, other_pk = derive_key_pair(SEED, b"tagging key")
    evaluated, proof = blind_evaluate(other_sk, other_pk, B_BLINDED)
    with pytest.raises(VoprfProofError):
        _finalize_batch(evaluated=evaluated, proof=proof)
    # Mixing: one element under each key, proof by the published key.
    mixed = [B_EVALUATED[0], evaluated[1]]
    with pytest.raises(VoprfProofError):
        _finalize_batch(evaluated=mixed)


def test_batch_proof_does_not_cover_a_sub_batch() -> None:
    with pytest.raises(VoprfProofError):
        finalize(B_INPUTS[:1], B_BLINDS[:1], B_EVALUATED[:1], B_BLINDED[:1], B_PROOF, PK_SM)


def test_proof_error_is_a_remote_error() -> None:
    assert issubclass(VoprfProofError, RemoteProtocolError)
    assert VoprfProofError("x").status == 400


@pytest.mark.parametrize(
    "proof",
    [
        B_PROOF[:-1],
        B_PROOF + b"\x00",
        _le(ORDER) + B_PROOF[32:],  # c not below the order
        B_PROOF[:32] + _le(ORDER + 1),  # s not below the order
        B_PROOF[:32] + B_PROOF[32:63] + bytes([B_PROOF[63] | 0x80]),  # top bit set
    ],
    ids=["short", "long", "c-noncanonical", "s-noncanonical", "s-top-bit"],
)
def test_malformed_proof_is_a_decode_error(proof: bytes) -> None:
    with pytest.raises(DecodeError):
        _finalize_batch(proof=proof)


@pytest.mark.parametrize(
    "evaluated",
    [
        [B_EVALUATED[0]],
        [*B_EVALUATED, B_EVALUATED[0]],
        [B_EVALUATED[0], IDENTITY],
        [B_EVALUATED[0], GENERATOR_TOP_BIT],
        [B_EVALUATED[0], bytes.fromhex(BAD_ENCODINGS[4])],
        [B_EVALUATED[0], B_EVALUATED[1][:31]],
    ],
    ids=["too-few", "too-many", "identity", "top-bit", "negative", "short"],
)
def test_malformed_evaluated_elements_are_decode_errors(evaluated: list[bytes]) -> None:
    with pytest.raises(DecodeError):
        _finalize_batch(evaluated=evaluated)


@pytest.mark.parametrize("pk", [IDENTITY, GENERATOR_TOP_BIT, PK_SM[:31], b""])
def test_malformed_public_key_is_a_decode_error(pk: bytes) -> None:
    with pytest.raises(DecodeError):
        _finalize_batch(pk=pk)


# --------------------------------------------------------------------------- decoding


@pytest.mark.parametrize(
    "encoding",
    [
        *BAD_ENCODINGS,
        GENERATOR_TOP_BIT.hex(),
        "0100000000000000000000000000000000000000000000000000000000000080",
    ],
)
def test_invalid_element_encodings_are_refused(encoding: str) -> None:
    with pytest.raises(DecodeError):
        decode_element(bytes.fromhex(encoding))
    with pytest.raises(DecodeError):
        blind_evaluate(SK_SM, PK_SM, [B_BLINDED[0], bytes.fromhex(encoding)])


def test_identity_is_refused() -> None:
    with pytest.raises(DecodeError, match="identity"):
        decode_element(IDENTITY)
    with pytest.raises(DecodeError, match="identity"):
        blind_evaluate(SK_SM, PK_SM, [IDENTITY])


@pytest.mark.parametrize("encoding", [b"", GENERATOR[:31], GENERATOR + b"\x00"])
def test_wrong_length_elements_are_refused(encoding: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_element(encoding)


def test_valid_elements_are_accepted() -> None:
    for element in [GENERATOR, PK_SM, *B_BLINDED, *B_EVALUATED]:
        assert decode_element(element) == element


def test_scalar_decoding() -> None:
    assert decode_scalar(bytes(32)) == bytes(32)
    assert decode_scalar(_le(ORDER - 1)) == _le(ORDER - 1)
    assert decode_scalar(SK_SM) == SK_SM
    for bad in [_le(ORDER), _le(ORDER + 1), _le(2**255), b"\xff" * 32, bytes(31), bytes(33)]:
        with pytest.raises(DecodeError):
            decode_scalar(bad)


def test_empty_or_oversized_batch_is_refused() -> None:
    with pytest.raises(DecodeError):
        blind_evaluate(SK_SM, PK_SM, [])
    with pytest.raises(DecodeError):
        blind_evaluate(SK_SM, PK_SM, [B_BLINDED[0]] * (voprf.MAX_BATCH + 1))


# --------------------------------------------------------------------------- caller errors


@pytest.mark.parametrize("sk", [bytes(32), _le(ORDER), SK_SM[:31]])
def test_bad_private_key_is_a_local_error(sk: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        blind_evaluate(sk, PK_SM, B_BLINDED)
    with pytest.raises(LocalProtocolError):
        evaluate(sk, INPUT_1)


@pytest.mark.parametrize("b", [bytes(32), _le(ORDER), BLIND_1[:31]])
def test_bad_blind_is_a_local_error(b: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        blind(INPUT_1, b)
    with pytest.raises(LocalProtocolError):
        finalize([INPUT_1, INPUT_2], [b, BLIND_2], B_EVALUATED, B_BLINDED, B_PROOF, PK_SM)


def test_bad_proof_randomness_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        blind_evaluate(SK_SM, PK_SM, B_BLINDED, bytes(32))


def test_oversized_input_is_a_local_error() -> None:
    x = bytes(MAX_INPUT_SIZE + 1)
    with pytest.raises(LocalProtocolError):
        blind(x)
    with pytest.raises(LocalProtocolError):
        evaluate(SK_SM, x)


def test_finalize_wants_matching_client_lists() -> None:
    with pytest.raises(LocalProtocolError):
        finalize([], [], [], [], B_PROOF, PK_SM)
    with pytest.raises(LocalProtocolError):
        finalize(B_INPUTS, B_BLINDS[:1], B_EVALUATED, B_BLINDED, B_PROOF, PK_SM)
    with pytest.raises(LocalProtocolError):
        finalize(B_INPUTS, B_BLINDS, B_EVALUATED, B_BLINDED[:1], B_PROOF, PK_SM)
    with pytest.raises(LocalProtocolError):
        finalize(B_INPUTS, B_BLINDS, B_EVALUATED, [B_BLINDED[0], IDENTITY], B_PROOF, PK_SM)
