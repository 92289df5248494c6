"""The test vectors of spec/vectors/ against the reference implementation.

* drift: spec/vectors/generate.py regenerates every committed file byte for byte,
  and spec/vectors/ holds nothing else;
* each vector file is checked here with the implementation's public functions,
  independently of the generator (values are read from the JSON files).

Vectors the implementation currently gets wrong carry a
``known_implementation_bug`` field; they are strict xfails, so fixing the bug
makes them fail until the flag is removed from the generator.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import io
import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from fedpetition.core import encoding, merkle, nullifiers, voprf
from fedpetition.core.addresses import canonical_mailbox
from fedpetition.core.documents import (
    EvaluationCounts,
    HostRoster,
    PetitionVersion,
    SignedDocument,
    check_version_chain,
)
from fedpetition.core.entries import (
    PrivateRecord,
    SignEntry,
    WithdrawEntry,
    commitment,
    parse_entry,
    scan_entry,
)
from fedpetition.core.errors import DecodeError, FedPetitionError, ProofError, VerificationError
from fedpetition.core.notes import (
    SIG_TYPE_COSIGNATURE_V1,
    SIG_TYPE_ED25519,
    Checkpoint,
    Signer,
    VerifierKey,
    cosign,
    cosignature_message,
    open_checkpoint,
    open_note,
    sign_checkpoint,
    sign_note,
)
from fedpetition.core.receipts import Receipt, verify_receipt
from fedpetition.core.verification import Verification
from fedpetition.verify.archive import ZipSource
from fedpetition.verify.render import report_to_json

VECTORS = Path(__file__).resolve().parents[2] / "spec" / "vectors"
GENERATOR_FILES = {"generate.py", "README.md"}


@cache
def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return data


def unrender(value: Any) -> Any:
    """The JSON rendering of a MessagePack value back to Python (README conventions)."""
    if isinstance(value, dict):
        ((tag, inner),) = value.items()
        if tag == "bin":
            return bytes.fromhex(inner)
        assert tag == "map", tag
        return {key: unrender(item) for key, item in inner.items()}
    if isinstance(value, list):
        return [unrender(item) for item in value]
    return value


def same(a: Any, b: Any) -> bool:
    """Equality that also tells booleans from integers and byte strings from strings."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def known_bug(item: dict[str, Any]) -> list[pytest.MarkDecorator]:
    reason = item.get("known_implementation_bug")
    return [pytest.mark.xfail(strict=True, reason=reason)] if reason else []


def params(name: str, section: str) -> list[Any]:
    """One pytest parameter per vector of a section, with its description as id."""
    items = load(name)[section]
    return [
        pytest.param(item, id=item.get("name") or item["description"][:60], marks=known_bug(item))
        for item in items
    ]


# --------------------------------------------------------------------------- drift


@pytest.fixture(scope="module")
def generated() -> dict[str, bytes]:
    spec = importlib.util.spec_from_file_location(
        "fedpetition_vectors_generate", VECTORS / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    files: dict[str, bytes] = module.generate()
    return files


def committed_files() -> set[str]:
    return {
        p.relative_to(VECTORS).as_posix()
        for p in VECTORS.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    } - GENERATOR_FILES


def test_generator_reproduces_every_file(generated: dict[str, bytes]) -> None:
    differ = sorted(
        name
        for name, data in generated.items()
        if not (VECTORS / name).is_file() or (VECTORS / name).read_bytes() != data
    )
    assert not differ, f"regenerate with spec/vectors/generate.py: {differ}"


def test_no_stale_files(generated: dict[str, bytes]) -> None:
    assert committed_files() == set(generated)


NOT_VECTORS = {"expected_report", "keys", "expected_cosigners"}  # lists of plain data


def test_every_file_has_provenance_and_every_vector_a_description() -> None:
    def walk(value: Any, where: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key not in NOT_VECTORS:
                    walk(item, f"{where}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict) and "map" not in item and "bin" not in item:
                    assert isinstance(item.get("description"), str), f"{where}[{i}]"
                walk(item, f"{where}[{i}]")

    for name in sorted(n for n in committed_files() if n.endswith(".json")):
        document = load(name)
        assert isinstance(document["provenance"], str) and document["provenance"], name
        walk({k: v for k, v in document.items() if k != "provenance"}, name)


# --------------------------------------------------------------------------- encoding


@pytest.mark.parametrize("vector", params("encoding.json", "valid"))
def test_encoding_valid(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    value = unrender(vector["value"])
    assert same(encoding.decode(data), value)
    assert encoding.encode(value) == data


def large_value(kind: str, length: int) -> Any:
    """The rule of the "valid_large" vectors (README)."""
    if kind == "str":
        return "a" * length
    if kind == "bin":
        return bytes(i % 256 for i in range(length))
    if kind == "array":
        return [None] * length
    assert kind == "map"
    return {f"{i:05d}": None for i in range(length)}


@pytest.mark.parametrize("vector", params("encoding.json", "valid_large"))
def test_encoding_valid_large(vector: dict[str, Any]) -> None:
    value = large_value(vector["kind"], vector["length"])
    data = encoding.encode(value)
    assert len(data) == vector["encoding_length"]
    assert data.startswith(bytes.fromhex(vector["encoding_prefix"]))
    assert hashlib.sha256(data).hexdigest() == vector["encoding_sha256"]
    assert encoding.decode(data) == value


@pytest.mark.parametrize("vector", params("encoding.json", "rejected"))
def test_encoding_rejected(vector: dict[str, Any]) -> None:
    with pytest.raises(DecodeError):
        encoding.decode(bytes.fromhex(vector["hex"]))


# --------------------------------------------------------------------------- entries


def build_entry(fields: dict[str, Any]) -> SignEntry | WithdrawEntry:
    if fields["type"] == "sign":
        return SignEntry(
            fields["petition"],
            fields["nullifier"],
            fields["commitment"],
            fields["time"],
            fields["method"],
            fields.get("region"),
        )
    return WithdrawEntry(fields["petition"], fields["nullifier"], fields["time"])


@pytest.mark.parametrize("vector", params("entries.json", "valid"))
def test_entry_valid(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    fields = unrender(vector["fields"])
    entry = build_entry(fields)
    assert entry.encode() == data
    assert parse_entry(data) == entry
    assert same(encoding.decode(data), fields)
    region = fields.get("region")
    assert scan_entry(data) == (
        fields["type"] == "sign",
        fields["petition"],
        fields["nullifier"],
        fields["time"],
        region,
    )
    assert merkle.leaf_hash(data).hex() == vector["leaf_hash"]


@pytest.mark.parametrize("vector", params("entries.json", "rejected"))
def test_entry_rejected(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    assert scan_entry(data) is None
    with pytest.raises(DecodeError):
        parse_entry(data)


def test_entry_commitment() -> None:
    vector = load("entries.json")["commitment"]
    record = bytes.fromhex(vector["record"])
    assert bytes.fromhex(vector["context"]) == b"fedpetition-commitment/v1\n"
    assert commitment(bytes.fromhex(vector["salt"]), record).hex() == vector["commitment"]
    fields = unrender(vector["record_fields"])
    assert PrivateRecord(fields["petition"], fields["email"], fields["name"]).encode() == record
    assert PrivateRecord.decode(record).name == fields["name"]


# --------------------------------------------------------------------------- merkle


def check_tree(tree: dict[str, Any], leaf_data: list[bytes]) -> None:
    leaves = [merkle.leaf_hash(d) for d in leaf_data]
    for size, want in enumerate(tree["roots"]):
        assert merkle.root(leaves[:size]).hex() == want
    hash_at = merkle.hash_at_from_leaves(leaves)
    for item in tree["inclusion"]:
        proof = [bytes.fromhex(h) for h in item["proof"]]
        index, size = item["index"], item["size"]
        assert item["leaf_hash"] == leaves[index].hex()
        assert merkle.inclusion_proof(index, size, hash_at) == proof
        merkle.verify_inclusion(leaves[index], index, size, proof, bytes.fromhex(item["root"]))
    for item in tree["consistency"]:
        proof = [bytes.fromhex(h) for h in item["proof"]]
        old, new = item["old_size"], item["new_size"]
        if old:
            assert merkle.consistency_proof(old, new, hash_at) == proof
        merkle.verify_consistency(
            old, new, proof, bytes.fromhex(item["old_root"]), bytes.fromhex(item["new_root"])
        )


def test_merkle_ct_reference_tree() -> None:
    tree = load("merkle.json")["ct_reference_tree"]
    assert "certificate-transparency" in tree["provenance"]
    leaves = [bytes.fromhex(x) for x in tree["leaves"]]
    assert [merkle.leaf_hash(x).hex() for x in leaves] == tree["leaf_hashes"]
    check_tree(tree, leaves)


def test_merkle_generated_tree() -> None:
    tree = load("merkle.json")["generated_tree"]
    assert tree["leaves"] == [bytes([i]).hex() for i in range(len(tree["leaves"]))]
    check_tree(tree, [bytes.fromhex(x) for x in tree["leaves"]])


@pytest.mark.parametrize("vector", params("merkle.json", "invalid_inclusion"))
def test_merkle_invalid_inclusion(vector: dict[str, Any]) -> None:
    with pytest.raises(ProofError):
        merkle.verify_inclusion(
            bytes.fromhex(vector["leaf_hash"]),
            vector["index"],
            vector["size"],
            [bytes.fromhex(h) for h in vector["proof"]],
            bytes.fromhex(vector["root"]),
        )


@pytest.mark.parametrize("vector", params("merkle.json", "invalid_consistency"))
def test_merkle_invalid_consistency(vector: dict[str, Any]) -> None:
    with pytest.raises(ProofError):
        merkle.verify_consistency(
            vector["old_size"],
            vector["new_size"],
            [bytes.fromhex(h) for h in vector["proof"]],
            bytes.fromhex(vector["old_root"]),
            bytes.fromhex(vector["new_root"]),
        )


# --------------------------------------------------------------------------- notes


def test_note_keys() -> None:
    for key in load("notes.json")["keys"]:
        seed = hashlib.sha256(b"fedpetition test key " + key["seed_label"].encode()).digest()
        assert seed.hex() == key["seed"]
        signer = Signer(key["name"], seed)
        assert signer.public_key.hex() == key["public_key"]
        assert signer.private_key_string() == key["private_key"]
        assert Signer.from_private_key_string(key["private_key"]).public_key == signer.public_key
        vkey = VerifierKey.parse(key["vkey"])
        assert (vkey.sig_type, f"{vkey.key_id:08x}") == (SIG_TYPE_ED25519, key["key_id"])
        assert str(signer.verifier_key()) == key["vkey"]
        cosigner = VerifierKey.parse(key["cosignature_vkey"])
        assert cosigner.sig_type == SIG_TYPE_COSIGNATURE_V1
        assert f"{cosigner.key_id:08x}" == key["cosignature_key_id"]
        assert str(signer.verifier_key(SIG_TYPE_COSIGNATURE_V1)) == key["cosignature_vkey"]


def signer_named(name: str) -> Signer:
    key = next(k for k in load("notes.json")["keys"] if k["seed_label"] == name)
    return Signer.from_private_key_string(key["private_key"])


def test_note_checkpoint() -> None:
    vector = load("notes.json")["checkpoint"]
    checkpoint = Checkpoint(vector["origin"], vector["size"], bytes.fromhex(vector["root_hash"]))
    assert checkpoint.body() == vector["body"]
    log = signer_named(vector["origin"].split("/", 1)[0])
    assert sign_checkpoint(checkpoint, log) == vector["signed_note"]
    witnesses = [VerifierKey.parse(w) for w in vector["witnesses"]]
    opened = open_checkpoint(
        vector["cosigned_note"], VerifierKey.parse(vector["log_key"]), witnesses
    )
    assert opened.checkpoint == checkpoint
    assert [{"name": k.name, "timestamp": t} for k, t in opened.cosignatures] == vector[
        "expected_cosigners"
    ]


def test_note_cosignature() -> None:
    vector = load("notes.json")["cosignature"]
    body = load("notes.json")["checkpoint"]["body"]
    cosigner = VerifierKey.parse(vector["cosigner_vkey"])
    message = cosignature_message(body, vector["timestamp"])
    assert message.decode() == vector["signed_message"]
    assert message.hex() == vector["signed_message_hex"]
    assert cosign(body, signer_named(cosigner.name), vector["timestamp"]) == vector["line"]


def test_note_go_sumdb_vector() -> None:
    vector = load("notes.json")["go_sumdb_note"]
    assert "golang/mod" in vector["provenance"]
    signer = Signer.from_private_key_string(vector["private_key"])
    assert str(signer.verifier_key()) == vector["vkey"]
    assert sign_note(vector["text"], [signer]) == vector["note"]
    assert open_note(vector["note"], [VerifierKey.parse(vector["vkey"])]).text == vector["text"]


@pytest.mark.parametrize("vector", params("notes.json", "invalid"))
def test_note_invalid(vector: dict[str, Any]) -> None:
    log_key = VerifierKey.parse(vector["log_key"])
    witnesses = [VerifierKey.parse(w) for w in vector["witnesses"]]
    if vector["rejected_by"] == "open_checkpoint":
        with pytest.raises(FedPetitionError):
            open_checkpoint(vector["note"], log_key, witnesses)
    else:
        # A valid note that this protocol's checkpoint rules (§7) refuse.
        assert vector["rejected_by"] == "protocol"
        checkpoint = open_checkpoint(vector["note"], log_key, witnesses).checkpoint
        assert checkpoint.extensions or checkpoint.origin != vector["expected_origin"]


@pytest.mark.parametrize("vector", params("notes.json", "invalid_vkeys"))
def test_note_invalid_vkey(vector: dict[str, Any]) -> None:
    with pytest.raises(DecodeError):
        VerifierKey.parse(vector["vkey"])


# --------------------------------------------------------------------------- documents


def test_documents_valid() -> None:
    vectors = load("documents.json")
    origin = VerifierKey.parse(vectors["origin_vkey"])
    versions = []
    for item in vectors["versions"]:
        document = SignedDocument.decode(bytes.fromhex(item["envelope"]))
        assert document.body.hex() == item["body"]
        assert document.signature.hex() == item["signature"]
        assert document.encode().hex() == item["envelope"]
        assert document.digest.hex() == item["digest"]
        document.verify(origin)
        version = PetitionVersion.decode(document.body)
        assert version.encode() == document.body
        assert same(encoding.decode(document.body), unrender(item["body_value"]))
        versions.append(version)
    check_version_chain(versions, [bytes.fromhex(i["digest"]) for i in vectors["versions"]])
    item = vectors["roster"]
    document = SignedDocument.decode(bytes.fromhex(item["envelope"]))
    document.verify(origin)
    roster = HostRoster.decode(document.body)
    assert roster.encode() == document.body
    assert same(encoding.decode(document.body), unrender(item["body_value"]))


@pytest.mark.parametrize("vector", params("documents.json", "invalid_envelopes"))
def test_documents_invalid_envelope(vector: dict[str, Any]) -> None:
    origin = VerifierKey.parse(load("documents.json")["origin_vkey"])
    with pytest.raises(FedPetitionError):
        SignedDocument.decode(bytes.fromhex(vector["envelope"])).verify(origin)


@pytest.mark.parametrize("vector", params("documents.json", "invalid_petition_bodies"))
def test_documents_invalid_petition(vector: dict[str, Any]) -> None:
    with pytest.raises(DecodeError):
        PetitionVersion.decode(bytes.fromhex(vector["body"]))


@pytest.mark.parametrize("vector", params("documents.json", "invalid_version_chains"))
def test_documents_invalid_chain(vector: dict[str, Any]) -> None:
    bodies = [bytes.fromhex(b) for b in vector["bodies"]]
    versions = [PetitionVersion.decode(b) for b in bodies]
    with pytest.raises(DecodeError):
        check_version_chain(versions, [hashlib.sha256(b).digest() for b in bodies])


@pytest.mark.parametrize("vector", params("documents.json", "invalid_roster_bodies"))
def test_documents_invalid_roster(vector: dict[str, Any]) -> None:
    with pytest.raises(DecodeError):
        HostRoster.decode(bytes.fromhex(vector["body"]))


def test_documents_evaluation_counts() -> None:
    vectors = load("documents.json")
    item = vectors["evaluations"]
    document = SignedDocument.decode(bytes.fromhex(item["envelope"]))
    assert document.encode().hex() == item["envelope"]
    document.verify(VerifierKey.parse(vectors["origin_vkey"]))
    counts = EvaluationCounts.decode(document.body)
    assert counts.encode() == document.body
    assert same(encoding.decode(document.body), unrender(item["body_value"]))
    # The same counts are the evaluations member of the valid bundle.
    expected = load("bundles/valid.json")["expected_report"]["evaluations"]
    assert counts.time == expected["time"]
    assert {h["host"]: h["served"] for h in expected["hosts"]} == dict(counts.counts)


@pytest.mark.parametrize("vector", params("documents.json", "invalid_evaluations_bodies"))
def test_documents_invalid_evaluation_counts(vector: dict[str, Any]) -> None:
    with pytest.raises(DecodeError):
        EvaluationCounts.decode(bytes.fromhex(vector["body"]))


# --------------------------------------------------------------------------- nullifiers


def test_nullifier_key() -> None:
    vectors = load("nullifier.json")
    assert (vectors["suite"], vectors["mode"]) == (voprf.SUITE_ID, voprf.MODE_VOPRF)
    assert bytes.fromhex(vectors["context"]) == voprf.CONTEXT
    secret, petition, key = bytes.fromhex(vectors["origin_secret"]), vectors["petition"], \
        vectors["key"]
    info = nullifiers.KEY_CONTEXT + petition.encode()
    seed = hmac.new(secret, info, hashlib.sha256).digest()
    assert (info.hex(), seed.hex()) == (key["info"], key["seed"])
    sk, pk = voprf.derive_key_pair(seed, info)
    assert (sk.hex(), pk.hex()) == (key["skS"], key["pkS"])
    assert nullifiers.petition_key_pair(secret, petition) == (sk, pk)
    # The public key is the oprf_key of every version of the petition in documents.json.
    for item in load("documents.json")["versions"]:
        version = PetitionVersion.decode(bytes.fromhex(item["body"]))
        assert (version.id, version.oprf_key) == (petition, pk)


@pytest.mark.parametrize("vector", params("nullifier.json", "addresses"))
def test_nullifier_derivation(vector: dict[str, Any]) -> None:
    vectors = load("nullifier.json")
    petition = vectors["petition"]
    sk, pk = (bytes.fromhex(vectors["key"][k]) for k in ("skS", "pkS"))
    mailbox = canonical_mailbox(vector["address"])
    assert mailbox == vector["canonical_mailbox"]
    data = nullifiers.nullifier_input(petition, mailbox)
    assert data.hex() == vector["input"]
    blind, blinded = voprf.blind(data, bytes.fromhex(vector["blind"]))
    assert (blind.hex(), blinded.hex()) == (vector["blind"], vector["blinded_element"])
    evaluated, proof = voprf.blind_evaluate(
        sk, pk, [blinded], bytes.fromhex(vector["proof_randomness"]))
    assert ([e.hex() for e in evaluated], proof.hex()) == \
        ([vector["evaluated_element"]], vector["proof"])
    (output,) = voprf.finalize([data], [blind], evaluated, [blinded], proof, pk)
    assert output.hex() == vector["output"]
    assert voprf.evaluate(sk, data) == output  # the origin's own signers, evaluated directly
    assert nullifiers.nullifier(output).hex() == vector["nullifier"]


def test_nullifier_aliases_and_batch() -> None:
    vectors = load("nullifier.json")
    items, batch = vectors["addresses"], vectors["batch"]
    by_mailbox: dict[str, set[str]] = {}
    for item in items:
        by_mailbox.setdefault(item["canonical_mailbox"], set()).add(item["nullifier"])
    assert all(len(found) == 1 for found in by_mailbox.values())  # aliases: one nullifier
    assert len({item["nullifier"] for item in items}) == len(by_mailbox)  # others: distinct
    sk, pk = (bytes.fromhex(vectors["key"][k]) for k in ("skS", "pkS"))
    blinded = [bytes.fromhex(item["blinded_element"]) for item in items]
    evaluated, proof = voprf.blind_evaluate(sk, pk, blinded,
                                            bytes.fromhex(batch["proof_randomness"]))
    assert [e.hex() for e in evaluated] == batch["evaluated_elements"] == \
        [item["evaluated_element"] for item in items]
    assert proof.hex() == batch["proof"]
    outputs = voprf.finalize([bytes.fromhex(item["input"]) for item in items],
                             [bytes.fromhex(item["blind"]) for item in items],
                             evaluated, blinded, proof, pk)
    assert [o.hex() for o in outputs] == [item["output"] for item in items]
    assert batch["request"] == {"blinded": [base64.b64encode(b).decode() for b in blinded]}
    assert batch["response"] == {"evaluated": [base64.b64encode(e).decode() for e in evaluated],
                                 "proof": base64.b64encode(proof).decode()}


@pytest.mark.parametrize("vector", params("nullifier.json", "rejected"))
def test_nullifier_rejected(vector: dict[str, Any]) -> None:
    items = load("nullifier.json")["addresses"]
    error = voprf.VoprfProofError if vector["error"] == "VerifyError" else DecodeError
    with pytest.raises(error):
        voprf.finalize([bytes.fromhex(item["input"]) for item in items],
                       [bytes.fromhex(item["blind"]) for item in items],
                       [bytes.fromhex(e) for e in vector["evaluated_elements"]],
                       [bytes.fromhex(item["blinded_element"]) for item in items],
                       bytes.fromhex(vector["proof"]), bytes.fromhex(vector["pkS"]))


# --------------------------------------------------------------------------- receipts


def test_receipt_valid() -> None:
    vector = load("receipt.json")["valid"]
    data = (VECTORS / vector["file"]).read_bytes()
    assert same(encoding.decode(data), unrender(vector["fields"]))
    checked = verify_receipt(Receipt.decode(data))
    expected = vector["expected"]
    assert checked.receipt.log == expected["log"]
    assert checked.receipt.index == expected["index"]
    assert checked.checkpoint.size == expected["tree_size"]
    assert checked.checkpoint.root_hash.hex() == expected["root_hash"]
    assert list(checked.cosigners) == expected["cosigners"]
    assert merkle.leaf_hash(checked.receipt.entry).hex() == expected["leaf_hash"]
    assert checked.entry == build_entry(unrender(expected["entry_fields"]))
    record = unrender(expected["record_fields"])
    assert (checked.record.email, checked.record.name) == (record["email"], record["name"])


@pytest.mark.parametrize("vector", params("receipt.json", "invalid"))
def test_receipt_invalid(vector: dict[str, Any]) -> None:
    data = (VECTORS / vector["file"]).read_bytes()
    try:
        receipt = Receipt.decode(data)
    except FedPetitionError:
        assert vector["step"] == "receipt-format"
        return
    with pytest.raises(VerificationError) as failure:
        verify_receipt(receipt)
    assert failure.value.step == vector["step"]


# --------------------------------------------------------------------------- bundles


def verify_bundle(path: Path) -> Any:
    with ZipSource(io.BytesIO(path.read_bytes())) as source:
        return Verification(source).run()


def test_valid_bundle() -> None:
    vector = load("bundles/valid.json")
    data = (VECTORS / vector["bundle"]["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == vector["bundle"]["sha256"]
    report = report_to_json(verify_bundle(VECTORS / vector["bundle"]["file"]))
    report["steps"] = [{k: v for k, v in s.items() if k != "detail"} for s in report["steps"]]
    assert report == vector["expected_report"]
    assert report["ok"] is True


@pytest.mark.parametrize("vector", params("bundles/negative.json", "bundles"))
def test_negative_bundle(vector: dict[str, Any]) -> None:
    report = verify_bundle(VECTORS / vector["file"])
    if vector["step"] is None:  # verifies, but must raise exactly the named flag (§11.9)
        assert report.ok, [f.detail for f in report.failures]
        flagged = [(f.flag, f.host) for f in report.flags]
        host = vector["log"] and vector["log"].split("/", 1)[0]
        assert flagged == [(vector["flag"], host)], [f.detail for f in report.flags]
        return
    assert not report.ok
    first = report.failures[0]
    assert (first.step, first.log) == (vector["step"], vector["log"]), first.detail
    assert first.index == vector.get("index"), first.detail  # no "index": none is named


def test_readme_names_every_negative_bundle_and_receipt() -> None:
    readme = (VECTORS / "README.md").read_text(encoding="utf-8")
    for item in load("bundles/negative.json")["bundles"]:
        assert f"`{item['name']}`" in readme, item["name"]
    for item in load("receipt.json")["invalid"]:
        assert item["file"].removeprefix("receipt-").removesuffix(".fpr") in readme, item["file"]
