"""Tests for fedpetition.federation.documents (actor, WebFinger, NodeInfo 2.1).

Vectors and where they come from:

* W3C CCG did:key method, ``test-vectors/ed25519-x25519.json`` (repository
  w3c-ccg/did-method-key, commit 801b0a91ce5af882c389ca399fa1fd1a75229c09): for the
  seeds 00…00 to 00…04, the ``did:key:z6Mk…`` identifier (= the Ed25519 Multikey)
  and the raw key's ``publicKeyBase58``. The public key is derived here from the
  seed with ``cryptography``, so the vectors check seed -> key -> both encodings.
* FEP-521a's test feature ``fep/521a/fep-521a.feature`` ("Representing Ed25519
  public key"; copy in julianlam/feps, commit 04dd3300503f3877cf4ec41024d7fe48942b4103,
  of codeberg.org/fediverse/fep): key hex ``2e6fcce3…70e6`` -> ``z6MkhaXg…2doK``.
* W3C vc-di-eddsa (Data Integrity EdDSA Cryptosuites) test key, also the key of the
  FEP-521a example actor: ``secretKeyMultibase`` ``z3u2en7t…vjxq`` (multicodec
  ed25519-priv 0x80 0x26 || seed) has ``publicKeyMultibase`` ``z6MkrJVn…bTQ2``.
* multiformats/multibase ``tests/basic.csv``, ``tests/leading_zero.csv`` (commit
  1bb240bfd68baa643af3c1790d804b2cab76a2ab) and ``tests/two_leading_zeros.csv``
  (commit 2f6c3d4c49e48053f2decfda5878fc6da2a7e36d): base58btc of "yes mani !"
  with zero, one and two leading zero bytes.
* NodeInfo 2.1 JSON schema: ``data/nodeinfo-2.1.schema.json``, see ``data/README.md``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fedpetition import PROTOCOL_VERSION, __version__
from fedpetition.core.errors import DecodeError, LocalProtocolError
from fedpetition.core.notes import SIG_TYPE_COSIGNATURE_V1, Signer, VerifierKey
from fedpetition.federation.documents import (
    ACTIVITY_JSON,
    AS_CONTEXT,
    FEDPETITION_NS,
    MULTIKEY_CONTEXT,
    NODEINFO_21_REL,
    SECURITY_V1_CONTEXT,
    VKEY_PROPERTY,
    Actor,
    actor_document,
    base58btc_decode,
    base58btc_encode,
    ed25519_multikey,
    ed25519_public_key_pem,
    multibase_decode,
    node_acct,
    nodeinfo,
    nodeinfo_links,
    parse_actor,
    parse_ed25519_multikey,
    parse_ed25519_public_key_pem,
    webfinger,
)

DATA = Path(__file__).parent / "data"

# ------------------------------------------------------------------ vectors

# w3c-ccg/did-method-key test-vectors/ed25519-x25519.json: seed -> (did:key, publicKeyBase58).
DID_KEY_VECTORS = [
    (
        "00" * 32,
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
        "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS",
    ),
    (
        "00" * 31 + "01",
        "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG",
        "6ASf5EcmmEHTgDJ4X4ZT5vT6iHVJBXPg5AN5YoTCpGWt",
    ),
    (
        "00" * 31 + "02",
        "did:key:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf",
        "8pM1DN3RiT8vbom5u1sNryaNT1nyL8CTTW3b5PwWXRBH",
    ),
    (
        "00" * 31 + "03",
        "did:key:z6MkvqoYXQfDDJRv8L4wKzxYeuKyVZBfi9Qo6Ro8MiLH3kDQ",
        "HPYVwAQmskwT1qEEeRzhoomyfyupJGASQQtCXSNG8XS2",
    ),
    (
        "00" * 31 + "04",
        "did:key:z6MkwW6aqMnjgrhJXFUko3NnZPGzVpkNzhYK7yEhnsibmLwL",
        "J3qYF7YJMKCqQke47UQwiHizgFUXapHxRxKmxbkar89x",
    ),
]

# FEP-521a fep-521a.feature, scenario "Representing Ed25519 public key".
FEP521A_KEY_HEX = "2e6fcce36701dc791488e0d0b1745cc1e33a4c1c9fcc41c63bd343dbbe0970e6"
FEP521A_MULTIKEY = "z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"

# W3C vc-di-eddsa test key (the FEP-521a example actor's key).
VC_DI_EDDSA_SECRET = "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"
VC_DI_EDDSA_PUBLIC = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"

# multiformats/multibase tests/{basic,leading_zero,two_leading_zeros}.csv, base58btc rows.
MULTIBASE_VECTORS = [
    (b"yes mani !", "z7paNL19xttacUY"),
    (b"\x00yes mani !", "z17paNL19xttacUY"),
    (b"\x00\x00yes mani !", "z117paNL19xttacUY"),
]

# ------------------------------------------------------------------ fixtures

NAME = "node.example"
BASE = f"https://{NAME}"
ACTOR = f"{BASE}/actor"
SIGNER = Signer(NAME, bytes(range(32)))
PUBLIC = SIGNER.public_key
VKEY = SIGNER.verifier_key().to_string()


def _doc() -> dict[str, Any]:
    return actor_document(BASE, NAME, PUBLIC, VKEY)


def _public_from_seed(seed: bytes) -> bytes:
    return (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )


# ------------------------------------------------------------------ base58 / multibase


@pytest.mark.parametrize(("seed_hex", "did", "base58"), DID_KEY_VECTORS)
def test_did_key_vectors(seed_hex: str, did: str, base58: str) -> None:
    public = _public_from_seed(bytes.fromhex(seed_hex))
    assert base58btc_encode(public) == base58
    assert base58btc_decode(base58) == public
    multikey = did.removeprefix("did:key:")
    assert ed25519_multikey(public) == multikey
    assert parse_ed25519_multikey(multikey) == public


def test_fep521a_vector() -> None:
    key = bytes.fromhex(FEP521A_KEY_HEX)
    assert ed25519_multikey(key) == FEP521A_MULTIKEY
    assert parse_ed25519_multikey(FEP521A_MULTIKEY) == key


def test_vc_di_eddsa_vector() -> None:
    secret = multibase_decode(VC_DI_EDDSA_SECRET)
    assert secret[:2] == b"\x80\x26"  # multicodec ed25519-priv
    public = _public_from_seed(secret[2:])
    assert ed25519_multikey(public) == VC_DI_EDDSA_PUBLIC


@pytest.mark.parametrize(("raw", "encoded"), MULTIBASE_VECTORS)
def test_multibase_vectors(raw: bytes, encoded: str) -> None:
    assert "z" + base58btc_encode(raw) == encoded
    assert multibase_decode(encoded) == raw


@pytest.mark.parametrize("raw", [b"", b"\x00", b"\x00\x00", b"\x00\x01", b"\xff" * 40, b"\x01"])
def test_base58_round_trip_edges(raw: bytes) -> None:
    assert base58btc_decode(base58btc_encode(raw)) == raw


def test_base58_known_small_values() -> None:
    assert base58btc_encode(b"") == ""
    assert base58btc_encode(b"\x00") == "1"
    assert base58btc_encode(b"\x39") == "z"  # 57
    assert base58btc_encode(b"\x3a") == "21"  # 58


@pytest.mark.parametrize("bad", ["0", "O", "I", "l", "+", "abc def", "é"])
def test_base58_rejects_characters_outside_the_alphabet(bad: str) -> None:
    with pytest.raises(DecodeError, match="invalid character"):
        base58btc_decode(bad)


def test_base58_rejects_overlong_input() -> None:
    with pytest.raises(DecodeError, match="longer than"):
        base58btc_decode("2" * 5000)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "non-empty"),
        ("u7QGwDY2Tjn93PVFWWq02piP1NE9_XRlg-c8-jhJiDqKBDw", "not 'z'"),
        # multicodec secp256k1-pub (0xe7 0x01) instead of ed25519-pub
        ("z" + base58btc_encode(b"\xe7\x01" + bytes(33)), "not an Ed25519 public key"),
        ("z" + base58btc_encode(b"\xed\x01" + bytes(31)), "31 key bytes"),
        ("z" + base58btc_encode(b"\xed\x01" + bytes(33)), "33 key bytes"),
    ],
)
def test_parse_multikey_rejects(value: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        parse_ed25519_multikey(value)


def test_pem_round_trip_and_rejects() -> None:
    pem = ed25519_public_key_pem(PUBLIC)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert parse_ed25519_public_key_pem(pem) == PUBLIC
    with pytest.raises(DecodeError, match="not a valid PEM"):
        parse_ed25519_public_key_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    ec_pem = (
        generate_private_key(SECP256R1())
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(DecodeError, match="not an Ed25519 key"):
        parse_ed25519_public_key_pem(ec_pem)


# ------------------------------------------------------------------ actor


def test_actor_document_shape() -> None:
    doc = _doc()
    assert doc["@context"] == [
        AS_CONTEXT,
        SECURITY_V1_CONTEXT,
        MULTIKEY_CONTEXT,
        {"fedpetition": FEDPETITION_NS},
    ]
    assert doc["id"] == ACTOR
    assert doc["type"] == "Service"
    assert doc["preferredUsername"] == "node"
    assert doc["name"] == NAME
    assert doc["inbox"] == f"{BASE}/inbox"
    assert doc["outbox"] == f"{BASE}/outbox"
    assert doc["followers"] == f"{BASE}/followers"
    assert doc["publicKey"]["id"] == f"{ACTOR}#main-key"
    assert doc["publicKey"]["owner"] == ACTOR
    assert doc["assertionMethod"] == [
        {
            "id": f"{ACTOR}#ed25519-key",
            "type": "Multikey",
            "controller": ACTOR,
            "publicKeyMultibase": ed25519_multikey(PUBLIC),
        }
    ]
    assert doc[VKEY_PROPERTY] == VKEY
    json.dumps(doc)  # plain JSON


def test_actor_round_trip() -> None:
    actor = parse_actor(_doc(), ACTOR)
    assert actor == Actor(
        id=ACTOR,
        inbox=f"{BASE}/inbox",
        outbox=f"{BASE}/outbox",
        followers=f"{BASE}/followers",
        name=NAME,
        node_name=NAME,
        public_key=PUBLIC,
        public_key_id=f"{ACTOR}#main-key",
        multikey_id=f"{ACTOR}#ed25519-key",
        verifier_key=SIGNER.verifier_key(),
    )
    # A JSON round trip changes nothing.
    assert parse_actor(json.loads(json.dumps(_doc())), ACTOR) == actor


def test_actor_with_port_and_http() -> None:
    name = "localhost:8080"
    signer = Signer(name, bytes(32))
    doc = actor_document(
        f"http://{name}", name, signer.public_key, signer.verifier_key().to_string()
    )
    actor = parse_actor(doc, f"http://{name}/actor")
    assert actor.node_name == name
    assert actor.public_key == signer.public_key


def test_actor_document_builder_refuses() -> None:
    other = Signer(NAME, bytes(range(1, 33)))
    with pytest.raises(LocalProtocolError, match="not for this public key"):
        actor_document(BASE, NAME, PUBLIC, other.verifier_key().to_string())
    with pytest.raises(LocalProtocolError, match="named"):
        actor_document(
            BASE, NAME, PUBLIC, Signer("other.example", bytes(range(32))).verifier_key().to_string()
        )
    cosign = SIGNER.verifier_key(SIG_TYPE_COSIGNATURE_V1).to_string()
    with pytest.raises(LocalProtocolError, match="type 0x01"):
        actor_document(BASE, NAME, PUBLIC, cosign)
    with pytest.raises(LocalProtocolError, match="invalid verifier key"):
        actor_document(BASE, NAME, PUBLIC, "garbage")
    with pytest.raises(LocalProtocolError, match="32 bytes"):
        actor_document(BASE, NAME, PUBLIC[:31], VKEY)
    for base in (f"{BASE}/", f"ftp://{NAME}", "https://other.example", f"{BASE}/x"):
        with pytest.raises(LocalProtocolError, match="base URL"):
            actor_document(base, NAME, PUBLIC, VKEY)
    with pytest.raises(LocalProtocolError, match="node name"):
        actor_document("https://Node.Example", "Node.Example", PUBLIC, VKEY)


def _mutated(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(_doc())
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


_DELETE = object()
_OTHER = Signer(NAME, bytes(range(1, 33)))
_EVIL = "https://evil.example"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("id",), f"{BASE}/other", "not the URL it was fetched from"),
        (("id",), _DELETE, "has no 'id'"),
        (("type",), "Person", "not 'Service'"),
        (("type",), ["Service"], "not 'Service'"),
        (("@context",), [SECURITY_V1_CONTEXT], "does not include"),
        (("@context",), [AS_CONTEXT], "'fedpetition'"),
        (("@context", 3), {"fedpetition": "https://evil.example/ns#"}, "'fedpetition'"),
        (("inbox",), f"{_EVIL}/inbox", "FEP-fe34"),
        (("inbox",), 5, "'inbox' is not a string"),
        (("outbox",), f"http://{NAME}/outbox", "FEP-fe34"),
        (("outbox",), f"https://{NAME}:8443/outbox", "FEP-fe34"),
        (("followers",), "mailto:x@node.example", "not an http"),
        (("name",), 3, "'name' is not a string"),
        (("publicKey",), [], "single JSON object"),
        (("publicKey", "id"), f"{_EVIL}/actor#main-key", "publicKey id"),
        (("publicKey", "owner"), f"{_EVIL}/actor", "owner is not the actor"),
        (("publicKey", "publicKeyPem"), _DELETE, "has no 'publicKeyPem'"),
        (
            ("publicKey", "publicKeyPem"),
            ed25519_public_key_pem(_OTHER.public_key),
            "publicKeyMultibase and publicKeyPem hold different keys",
        ),
        (("assertionMethod",), [], "exactly one key"),
        (("assertionMethod",), ["https://node.example/actor#ed25519-key"], "embedded"),
        (("assertionMethod", 0, "type"), "JsonWebKey", "not 'Multikey'"),
        (("assertionMethod", 0, "id"), f"{_EVIL}/k", "Multikey id"),
        (("assertionMethod", 0, "id"), f"//{NAME}/k", "not an http"),
        (("assertionMethod", 0, "controller"), f"{_EVIL}/actor", "controller is not the actor"),
        (
            ("assertionMethod", 0, "publicKeyMultibase"),
            ed25519_multikey(_OTHER.public_key),
            "publicKeyMultibase and publicKeyPem hold different keys",
        ),
        (("assertionMethod", 0, "publicKeyMultibase"), "zzz0", "invalid character"),
        ((VKEY_PROPERTY,), _DELETE, f"has no '{VKEY_PROPERTY}'"),
        ((VKEY_PROPERTY,), "node.example+00000000+AAAA", VKEY_PROPERTY),
        (
            (VKEY_PROPERTY,),
            _OTHER.verifier_key().to_string(),
            f"{VKEY_PROPERTY} and publicKeyPem hold different keys",
        ),
        (
            (VKEY_PROPERTY,),
            Signer("other.example", bytes(range(32))).verifier_key().to_string(),
            "not the actor's host",
        ),
        (
            (VKEY_PROPERTY,),
            SIGNER.verifier_key(SIG_TYPE_COSIGNATURE_V1).to_string(),
            "type 0x01",
        ),
    ],
)
def test_parse_actor_rejects(path: tuple[str | int, ...], value: Any, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        parse_actor(_mutated(path, value), ACTOR)


def test_parse_actor_rejects_non_objects_and_wrong_fetch_url() -> None:
    with pytest.raises(DecodeError, match="not a JSON object"):
        parse_actor([_doc()], ACTOR)
    with pytest.raises(DecodeError, match="fetched from"):
        parse_actor(_doc(), f"{ACTOR}/")
    # A whole document consistently moved to another origin still fails on the URL.
    with pytest.raises(DecodeError, match="fetched from"):
        parse_actor(_doc(), f"{_EVIL}/actor")


def test_parse_actor_accepts_single_assertion_method_object() -> None:
    doc = _doc()
    doc["assertionMethod"] = doc["assertionMethod"][0]
    assert parse_actor(doc, ACTOR).public_key == PUBLIC


def test_parse_actor_accepts_missing_followers() -> None:
    doc = _doc()
    del doc["followers"]
    assert parse_actor(doc, ACTOR).followers is None


def test_verifier_key_in_actor_is_the_signer_key() -> None:
    vkey = parse_actor(_doc(), ACTOR).verifier_key
    assert vkey == VerifierKey.parse(VKEY)
    assert vkey.name == NAME


# ------------------------------------------------------------------ WebFinger

PETITIONS = {"save-the-park": f"{BASE}/petitions/save-the-park"}


def test_webfinger_node() -> None:
    expected = {
        "subject": "acct:node@node.example",
        "aliases": [ACTOR],
        "links": [{"rel": "self", "type": ACTIVITY_JSON, "href": ACTOR}],
    }
    assert node_acct(NAME) == "acct:node@node.example"
    assert webfinger("acct:node@node.example", BASE, NAME, PETITIONS) == expected
    assert webfinger("acct:node@NODE.example", BASE, NAME, PETITIONS) == expected
    assert webfinger("ACCT:node@node.example", BASE, NAME, PETITIONS) == expected
    assert webfinger(ACTOR, BASE, NAME, PETITIONS) == expected


def test_webfinger_petition() -> None:
    url = PETITIONS["save-the-park"]
    expected = {
        "subject": "acct:save-the-park@node.example",
        "aliases": [url],
        "links": [{"rel": "self", "type": ACTIVITY_JSON, "href": url}],
    }
    assert webfinger("acct:save-the-park@node.example", BASE, NAME, PETITIONS) == expected
    # RFC 7565: the userpart may be percent-encoded.
    assert webfinger("acct:save%2Dthe-park@node.example", BASE, NAME, PETITIONS) == expected
    assert webfinger(url, BASE, NAME, PETITIONS) == expected


def test_webfinger_with_port() -> None:
    name = "localhost:8080"
    got = webfinger("acct:node@localhost:8080", f"http://{name}", name, {})
    assert got is not None
    assert got["subject"] == "acct:node@localhost:8080"
    assert webfinger("acct:node@localhost", f"http://{name}", name, {}) is None


@pytest.mark.parametrize(
    "resource",
    [
        "acct:nobody@node.example",
        "acct:node@other.example",
        "acct:save-the-park@other.example",
        "acct:Save-The-Park@node.example",
        "https://node.example/petitions/unknown",
        "https://node.example/actor/",
        "mailto:node@node.example",
    ],
)
def test_webfinger_unknown(resource: str) -> None:
    assert webfinger(resource, BASE, NAME, PETITIONS) is None


@pytest.mark.parametrize(
    "resource",
    [
        "",
        "node@node.example",
        "acct:",
        "acct:node.example",
        "acct:@node.example",
        "acct:node@",
        "acct:no de@node.example",
        "acct:node@node.example\n",
        "acct:n/ode@node.example",
        "acct:node@node.example/path",
        "acct:node%zz@node.example",
        "acct:nöde@node.example",
        "1acct:node@node.example",
        "acct:node@" + "a" * 1100,
    ],
)
def test_webfinger_malformed(resource: str) -> None:
    with pytest.raises(DecodeError) as info:
        webfinger(resource, BASE, NAME, PETITIONS)
    assert info.value.status == 400


# ------------------------------------------------------------------ NodeInfo


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((DATA / "nodeinfo-2.1.schema.json").read_text("utf-8"))
    return schema


def test_nodeinfo_links() -> None:
    assert nodeinfo_links(BASE) == {
        "links": [{"rel": NODEINFO_21_REL, "href": f"{BASE}/nodeinfo/2.1"}]
    }
    with pytest.raises(LocalProtocolError):
        nodeinfo_links(f"{BASE}/")


def test_nodeinfo_document_validates_against_schema() -> None:
    doc = nodeinfo(
        __version__,
        petitions=3,
        signatures=1234,
        organisers=2,
        repository="https://example.org/fedpetition.git",
        homepage="https://example.org/",
    )
    jsonschema.Draft4Validator.check_schema(_schema())
    jsonschema.Draft4Validator(_schema()).validate(doc)
    assert doc["software"] == {
        "name": "fedpetition",
        "version": __version__,
        "repository": "https://example.org/fedpetition.git",
        "homepage": "https://example.org/",
    }
    assert doc["protocols"] == ["activitypub"]
    assert doc["openRegistrations"] is False
    assert doc["usage"] == {"users": {"total": 2}, "localPosts": 3}
    assert doc["metadata"] == {
        "protocolVersion": PROTOCOL_VERSION,
        "petitions": 3,
        "signatures": 1234,
    }


def test_nodeinfo_minimal_validates_and_schema_bites() -> None:
    doc = nodeinfo("0.0.0", petitions=0, signatures=0, organisers=0, protocol_version="9.9")
    validator = jsonschema.Draft4Validator(_schema())
    validator.validate(doc)
    assert "repository" not in doc["software"]
    assert doc["metadata"]["protocolVersion"] == "9.9"
    # The test would notice a schema violation: the schema is not vacuous.
    bad = copy.deepcopy(doc)
    bad["usage"]["users"]["total"] = -1
    assert not validator.is_valid(bad)
    bad = copy.deepcopy(doc)
    bad["extra"] = 1
    assert not validator.is_valid(bad)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"petitions": -1, "signatures": 0, "organisers": 0},
        {"petitions": 0, "signatures": True, "organisers": 0},
        {"petitions": 0, "signatures": 0, "organisers": 1.5},
    ],
)
def test_nodeinfo_refuses_bad_counts(kwargs: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError, match="non-negative integer"):
        nodeinfo(__version__, **kwargs)


def test_nodeinfo_refuses_empty_version() -> None:
    with pytest.raises(LocalProtocolError, match="software version"):
        nodeinfo("", petitions=0, signatures=0, organisers=0)
