"""The verification procedure (spec §11) over simulated federations."""

from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedpetition.core.verification import Verification
from fedpetition.simulate import SimulationResult
from fedpetition.verify.archive import ZipSource
from fedpetition.verify.render import report_to_json

from .conftest import build_bundle


def run(data: bytes, **options: object) -> dict[str, object]:
    with ZipSource(io.BytesIO(data)) as source:
        return report_to_json(Verification(source, **options).run())  # type: ignore[arg-type]


def first_failure(report: dict[str, object]) -> dict[str, object]:
    steps = report["steps"]
    assert isinstance(steps, list)
    return next(s for s in steps if s["status"] == "fail")


def rewrite(data: bytes, change: dict[str, bytes | None]) -> bytes:
    """A copy of a bundle with members replaced (bytes) or removed (None)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename in change:
                if change[info.filename] is not None:
                    dst.writestr(info, change[info.filename])
            else:
                dst.writestr(info, src.read(info))
    return out.getvalue()


def test_valid_bundle_counts_m_minus_d_minus_w(
    small_bundle: tuple[bytes, SimulationResult],
) -> None:
    data, result = small_bundle
    report = run(data)
    assert report["ok"] is True
    tally = report["tally"]
    assert isinstance(tally, dict)
    assert tally["total"] == 700 - 40 - 25 == result.expected_total
    assert tally["duplicates"] == 40
    assert sum(tally["regions"].values()) + tally["no_region"] == tally["total"]
    assert sum(tally["versions"].values()) == tally["total"]
    logs = report["logs"]
    assert isinstance(logs, list)
    assert {log["origin"]: log["counted"] for log in logs} == result.expected_counts
    assert all(log["root_hash"] and log["tree_size"] for log in logs)


@pytest.mark.parametrize(("nodes", "signatures", "duplicates", "withdrawals"),
                         [(1, 0, 0, 0), (1, 1, 0, 1), (2, 256, 128, 0), (4, 1025, 3, 500)])
def test_edges(nodes: int, signatures: int, duplicates: int, withdrawals: int) -> None:
    data, _result = build_bundle(nodes, signatures, duplicates, withdrawals, seed=5)
    report = run(data)
    assert report["ok"] is True, first_failure(report)
    assert report["tally"]["total"] == signatures - duplicates - withdrawals  # type: ignore[index]


def test_same_seed_same_bytes() -> None:
    assert build_bundle(seed=3, signatures=300)[0] == build_bundle(seed=3, signatures=300)[0]
    assert build_bundle(seed=3, signatures=300)[0] != build_bundle(seed=4, signatures=300)[0]


def test_inflated_claim_is_caught(small_bundle: tuple[bytes, SimulationResult]) -> None:
    from fedpetition.core.bundle import Claims, Manifest

    data, result = small_bundle
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        manifest = Manifest.decode(z.read("manifest"))
    inflated = Manifest(manifest.petition, manifest.members,
                        Claims(result.expected_total + 1000, dict(result.expected_counts)))
    report = run(rewrite(data, {"manifest": inflated.encode()}))
    assert report["ok"] is False
    assert first_failure(report)["step"] == "manifest-claims"


def test_missing_tile_is_caught(small_bundle: tuple[bytes, SimulationResult]) -> None:
    data, _result = small_bundle
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        victim = next(n for n in z.namelist() if "/tile/0/000" in n)
    report = run(rewrite(data, {victim: None}))
    assert first_failure(report)["step"] in ("bundle-archive", "bundle-members")


def test_exclude_recomputes_without_a_node(small_bundle: tuple[bytes, SimulationResult]) -> None:
    data, _ = small_bundle
    full = run(data)
    partial = run(data, exclude=["node-c.example"])
    assert partial["ok"] is True
    assert partial["excluded"] == ["node-c.example"]
    assert [log["host"] for log in partial["logs"]] == ["node-a.example", "node-b.example"]
    assert partial["tally"]["total"] < full["tally"]["total"]  # type: ignore[index]
    assert run(data, exclude=["nobody.example"])["ok"] is False


def test_pinned_origin_key(small_bundle: tuple[bytes, SimulationResult]) -> None:
    from fedpetition.core.notes import Signer

    data, result = small_bundle
    from fedpetition.core.notes import VerifierKey

    assert run(data, origin_key=VerifierKey.parse(result.origin_key))["ok"] is True
    other = Signer("node-a.example", bytes(32)).verifier_key()
    report = run(data, origin_key=other)
    assert first_failure(report)["step"] == "petition-documents"


def test_not_a_zip_is_a_decode_error() -> None:
    from fedpetition.core.errors import DecodeError

    with pytest.raises(DecodeError):
        ZipSource(io.BytesIO(b"PK\x03\x04 not really"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_single_byte_change_fails_or_changes_nothing(
    small_bundle: tuple[bytes, SimulationResult], data: st.DataObject,
) -> None:
    """spec §11: every byte a verifier reads is checked or irrelevant to the report."""
    original, _ = small_bundle
    expected = _reference_report(original)
    position = data.draw(st.integers(0, len(original) - 1), label="position")
    delta = data.draw(st.integers(1, 255), label="xor")
    tampered = bytearray(original)
    tampered[position] ^= delta
    try:
        source = ZipSource(io.BytesIO(bytes(tampered)))
    except Exception as e:  # only our own error type may escape the archive reader
        from fedpetition.core.errors import DecodeError

        assert isinstance(e, DecodeError)
        return
    with source:
        report = report_to_json(Verification(source).run())
    assert report["ok"] is False or report == expected


_reference: dict[bytes, dict[str, object]] = {}


def _reference_report(data: bytes) -> dict[str, object]:
    if data not in _reference:
        _reference[data] = run(data)
    return _reference[data]


def test_parallel_runner_gives_the_same_report(bundle_file: object) -> None:
    from pathlib import Path

    from fedpetition.verify.parallel import zip_runner

    path = str(bundle_file)
    assert isinstance(bundle_file, Path)
    with ZipSource(path) as source:
        serial = report_to_json(Verification(source).run())
    with ZipSource(path) as source, zip_runner(source, 2) as runner:
        parallel = report_to_json(Verification(source, runner=runner).run())
    assert serial["ok"] is True
    assert parallel == serial


def test_parallel_runner_reports_the_same_failure(tmp_path: object,
                                                  small_bundle: tuple[bytes, SimulationResult]
                                                  ) -> None:
    from pathlib import Path

    from fedpetition.verify.parallel import zip_runner

    assert isinstance(tmp_path, Path)
    data, _ = small_bundle
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        victim = next(n for n in z.namelist() if "node-b.example/" in n and "/entries/" in n)
        content = bytearray(z.read(victim))
    content[300] ^= 0x40
    path = tmp_path / "tampered.zip"
    path.write_bytes(rewrite(data, {victim: bytes(content)}))
    with ZipSource(str(path)) as source:
        serial = report_to_json(Verification(source).run())
    with ZipSource(str(path)) as source, zip_runner(source, 2) as runner:
        parallel = report_to_json(Verification(source, runner=runner).run())
    assert serial["ok"] is False
    assert parallel == serial
