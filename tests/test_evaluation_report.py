"""The verifier's evaluation report (spec §11.9): entries against evaluations served.

Built on spec/vectors/bundles/valid.zip, whose evaluation counts the origin
(node-a.example, a test key) signed; the variants below re-sign counts with the
same test key, or break them.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from fedpetition.cli import EXIT_FLAGGED, EXIT_OK, main
from fedpetition.core import bundle
from fedpetition.core.documents import EvaluationCounts, SignedDocument, sign_evaluations
from fedpetition.core.notes import Signer
from fedpetition.core.verification import (
    FLAG_EXCEEDED,
    FLAG_UNUSABLE,
    NO_EVALUATIONS,
    Report,
    Verification,
)
from fedpetition.verify.archive import ZipSource
from fedpetition.verify.render import print_text, report_to_json

VECTORS = Path(__file__).resolve().parents[1] / "spec" / "vectors" / "bundles"
PETITION = "node-a.example/clean-air"
MEMBER = bundle.evaluations_path(PETITION)
B, C = "node-b.example", "node-c.example"


def vector_signer(name: str) -> Signer:
    """The vectors' test key for ``name`` (spec/vectors/README.md)."""
    return Signer(name, hashlib.sha256(b"fedpetition test key " + name.encode()).digest())


ORIGIN = vector_signer("node-a.example")


def valid() -> bytes:
    return (VECTORS / "valid.zip").read_bytes()


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def rebuilt(data: bytes, changes: dict[str, bytes | None]) -> bytes:
    """The bundle with members replaced (bytes) or removed (None), its manifest to match."""
    merged: dict[str, bytes | None] = {**members(data), **changes}
    files = {path: content for path, content in merged.items() if content is not None}
    manifest = bundle.Manifest.decode(files[bundle.MANIFEST])
    listed = tuple(sorted(p for p in files if p != bundle.MANIFEST))
    files[bundle.MANIFEST] = bundle.Manifest(manifest.petition, listed, manifest.claims).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for path in sorted(files):
            archive.writestr(path, files[path])
    return out.getvalue()


def served() -> EvaluationCounts:
    document = SignedDocument.decode(members(valid())[MEMBER])
    return EvaluationCounts.decode(document.body)


def with_counts(counts: dict[str, int], signer: Signer = ORIGIN,
                petition: str = PETITION) -> bytes:
    document = EvaluationCounts(petition, counts, served().time)
    signed = (sign_evaluations(document, signer) if signer.name == "node-a.example"
              else SignedDocument.sign(document.encode(), signer))
    return rebuilt(valid(), {MEMBER: signed.encode()})


def verify(data: bytes, **options: Any) -> Report:
    with ZipSource(io.BytesIO(data)) as source:
        return Verification(source, **options).run()


def text(report: Report) -> str:
    out = io.StringIO()
    print_text(report, out)
    return out.getvalue()


def hosts(report: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {h["host"]: (h["sign_entries"], h["nullifiers"], h["served"], h["flagged"])
            for h in report["evaluations"]["hosts"]}


def test_valid_bundle_reports_entries_against_evaluations_served() -> None:
    report = verify(valid())
    assert report.ok and not report.flags
    data = report_to_json(report)
    assert data["evaluations"]["status"] == "checked"
    assert data["evaluations"]["time"] == served().time
    counts = served().counts
    rows = hosts(data)
    assert list(rows) == [B, C]  # roster order, the origin left out
    assert {h: row[2] for h, row in rows.items()} == counts
    assert not any(row[3] for row in rows.values())
    assert all(row[1] <= row[0] for row in rows.values())  # nullifiers <= sign entries
    printed = text(report)
    assert "sign entries  nullifiers / evaluations served" in printed
    sign_b, nullifiers_b, served_b, _ = rows[B]
    assert f"{B:<24} {sign_b:>12} {nullifiers_b:>11} / {served_b}\n" in printed
    assert "FLAG" not in printed
    assert data["flags"] == []


def test_a_host_with_more_nullifiers_than_evaluations_is_flagged_by_name() -> None:
    rows = hosts(report_to_json(verify(valid())))
    nullifiers_c = rows[C][1]
    data = with_counts({**served().counts, C: nullifiers_c - 1})
    report = verify(data)
    # A flag, not a failure: every step passes and the tally is the valid bundle's.
    assert report.ok
    assert report.tally is not None
    assert report.tally.total == verify(valid()).tally.total  # type: ignore[union-attr]
    assert [(f.flag, f.host) for f in report.flags] == [(FLAG_EXCEEDED, C)]
    json_report = report_to_json(report)
    assert json_report["ok"] is True
    assert hosts(json_report)[C][2:] == (nullifiers_c - 1, True)
    assert hosts(json_report)[B][3] is False
    assert json_report["flags"] == [{
        "flag": "evaluations-exceeded", "host": C,
        "detail": f"{nullifiers_c} nullifiers signed in {rows[C][0]} sign entries, "
                  f"{nullifiers_c - 1} evaluations served"}]
    printed = text(report)
    assert "FLAGGED evaluations-exceeded" in printed  # on the host's row
    assert f"FLAGGED: evaluations-exceeded: {C}: {nullifiers_c} nullifiers" in printed
    assert "OK: all" in printed


def test_equal_counts_are_not_flagged_and_a_host_never_served_counts_zero() -> None:
    rows = hosts(report_to_json(verify(valid())))
    report = verify(with_counts({C: rows[C][1]}))  # node-b absent from the counts
    assert [(f.flag, f.host) for f in report.flags] == [(FLAG_EXCEEDED, B)]
    again = hosts(report_to_json(report))
    assert again[B][2:] == (0, True) and again[C][3] is False


def test_absent_counts_are_reported_without_a_flag() -> None:
    report = verify(rebuilt(valid(), {MEMBER: None}))
    assert report.ok and not report.flags
    data = report_to_json(report)
    assert data["evaluations"] == {"status": "absent", "reason": None, "time": None,
                                   "hosts": []}
    assert NO_EVALUATIONS == "no evaluation counts published"
    assert f"evaluations\n  {NO_EVALUATIONS}\n" in text(report)


def test_counts_with_a_bad_signature_are_unusable_and_named() -> None:
    document = SignedDocument.decode(members(valid())[MEMBER])
    broken = SignedDocument(document.body, bytes([document.signature[0] ^ 1])
                            + document.signature[1:])
    report = verify(rebuilt(valid(), {MEMBER: broken.encode()}))
    assert report.ok  # the steps and the tally stand
    assert [f.flag for f in report.flags] == [FLAG_UNUSABLE]
    data = report_to_json(report)
    assert data["evaluations"]["status"] == "unusable"
    assert "not signed by node-a.example" in data["evaluations"]["reason"]
    assert data["evaluations"]["hosts"] == []
    assert data["flags"][0]["flag"] == "evaluations-unusable" and "host" not in data["flags"][0]
    printed = text(report)
    assert "unusable: document is not signed by node-a.example" in printed
    assert f"FLAGGED: evaluations-unusable: {MEMBER}: document is not signed" in printed


@pytest.mark.parametrize(("data", "reason"), [
    (lambda: with_counts({B: 10**6}, signer=vector_signer(B)), "not signed by node-a.example"),
    (lambda: with_counts({B: 1}, petition="node-a.example/other"),
     "the counts are for node-a.example/other"),
    (lambda: rebuilt(valid(), {MEMBER: b"\x80"}), "signed document"),
    (lambda: rebuilt(valid(), {MEMBER: sign_evaluations(served(), ORIGIN).encode()[:-1]}),
     "MessagePack"),
])
def test_other_unusable_counts(data: Any, reason: str) -> None:
    report = verify(data())
    assert report.ok
    assert report.evaluations is not None and report.evaluations.status == "unusable"
    assert reason in (report.evaluations.reason or "")
    assert [f.flag for f in report.flags] == [FLAG_UNUSABLE]


def test_excluded_and_failed_hosts_are_not_compared() -> None:
    low = with_counts({B: 0, C: 0})
    report = verify(low, exclude=[B])
    assert [h.host for h in report.evaluations.hosts] == [C]  # type: ignore[union-attr]
    assert [(f.flag, f.host) for f in report.flags] == [(FLAG_EXCEEDED, C)]
    # node-c's log fails (a tampered entry bundle): its figures are unknown, not flagged.
    files = members(low)
    tampered = next(p for p in files if p.startswith(f"{C}/log/") and "/tile/entries/" in p)
    content = files[tampered]
    report = verify(rebuilt(low, {tampered: content[:40] + bytes([content[40] ^ 1])
                                  + content[41:]}))
    assert not report.ok
    rows = {h.host: h for h in report.evaluations.hosts}  # type: ignore[union-attr]
    assert rows[C].sign_entries is None and rows[C].nullifiers is None and not rows[C].flagged
    assert rows[B].flagged
    assert "          -           - / 0" in text(report)


def test_not_reached_when_the_bundle_fails_early() -> None:
    files = members(valid())
    report = verify(rebuilt(valid(), {bundle.roster_path(PETITION): files[MEMBER]}))
    assert not report.ok and report.evaluations is None and not report.flags
    assert report_to_json(report)["evaluations"] is None
    assert "\nevaluations\n" not in text(report)


def test_the_command_exits_3_on_a_flag_and_names_it(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    flagged = VECTORS / "signers-invented-by-host.zip"
    assert main(["verify", str(flagged), "--workers", "1"]) == EXIT_FLAGGED == 3
    out, err = capsys.readouterr()
    assert "FLAGGED evaluations-exceeded" in out and "OK: all" in out
    assert err.startswith(f"verify: FLAG evaluations-exceeded: {B}: ")
    assert main(["verify", str(flagged), "--json", "--workers", "1"]) == EXIT_FLAGGED
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert [(f["flag"], f.get("host")) for f in report["flags"]] == [("evaluations-exceeded", B)]
    assert hosts(report)[B][3] is True

    unusable = VECTORS / "evaluations-not-signed-by-origin.zip"
    assert main(["verify", str(unusable), "--workers", "1"]) == EXIT_FLAGGED
    out, err = capsys.readouterr()
    assert err.startswith("verify: FLAG evaluations-unusable: ")

    assert main(["verify", str(VECTORS / "valid.zip"), "--workers", "1"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert "nullifiers / evaluations served" in out and err == ""
    # A bundle that is not verified exits 1, whatever its flags.
    bad = tmp_path / "bad.zip"
    files = members(flagged.read_bytes())
    claims = bundle.Manifest.decode(files[bundle.MANIFEST])
    inflated = bundle.Claims(claims.claims.total + 1, claims.claims.logs)  # type: ignore[union-attr]
    bad.write_bytes(rebuilt(flagged.read_bytes(), {bundle.MANIFEST: bundle.Manifest(
        claims.petition, claims.members, inflated).encode()}))
    assert main(["verify", str(bad), "--workers", "1"]) == 1
