"""The verification procedure (spec §11) over simulated federations."""

from __future__ import annotations

import io
import struct
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
    report = _both_ways(bytes(tampered))
    if report is not None:
        assert report["ok"] is False or report == expected


def _both_ways(data: bytes) -> dict[str, object] | None:
    """The report on an archive read from memory, which must be the report on the same
    bytes read from a file (members then come by pread, not zipfile); None if both
    refuse the archive with a DecodeError."""
    import tempfile

    from fedpetition.core.errors import DecodeError

    reports = []
    with tempfile.NamedTemporaryFile(suffix=".zip") as file:
        file.write(data)
        file.flush()
        for where in (io.BytesIO(data), file.name):
            try:
                source = ZipSource(where)
            except Exception as e:  # only our own error type may escape the archive reader
                assert isinstance(e, DecodeError)
                reports.append(None)
                continue
            with source:
                reports.append(report_to_json(Verification(source).run()))
    assert _outcome(reports[0]) == _outcome(reports[1])
    return reports[0]


def _outcome(report: dict[str, object] | None) -> object:
    """A report, less the wording of a failed read (which comes from the file object:
    a seek in memory and one on disk word the same overflow differently)."""
    if report is None:
        return None
    steps = report["steps"]
    assert isinstance(steps, list)
    return {**report, "steps": [{k: v for k, v in step.items()
                                 if not (k == "detail" and step["status"] == "fail")}
                                for step in steps]}


def _central_entry(data: bytes | bytearray, name: str) -> int:
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        size = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46:at + 46 + size] == name.encode():
            return at
        at = data.find(b"PK\x01\x02", at + 1)
    raise AssertionError(name)


@pytest.mark.parametrize("damage", ["compressed size", "patched-data flag", "zip64 offset"])
def test_odd_zip_headers_read_from_a_file_as_from_memory(
        small_bundle: tuple[bytes, SimulationResult], damage: str) -> None:
    """Central-directory fields the direct reader must not trust (APPNOTE.TXT 4.3.12)."""
    original, _ = small_bundle
    with zipfile.ZipFile(io.BytesIO(original)) as z:
        victim = next(n for n in z.namelist() if "/tile/entries/" in n)
    data = bytearray(original)
    at = _central_entry(data, victim)
    if damage == "compressed size":  # stored, but its two sizes disagree
        size = struct.unpack_from("<I", data, at + 24)[0]
        struct.pack_into("<I", data, at + 20, size - 1)
    elif damage == "patched-data flag":  # general purpose bit 5
        flags = struct.unpack_from("<H", data, at + 8)[0]
        struct.pack_into("<H", data, at + 8, flags | 0x20)
    else:  # a local header offset in a zip64 extra field, far beyond any file
        name_size, extra_size = struct.unpack_from("<HH", data, at + 28)
        extra = struct.pack("<HHQ", 1, 8, 2**63 + 5)
        struct.pack_into("<H", data, at + 30, extra_size + len(extra))
        struct.pack_into("<I", data, at + 42, 0xFFFFFFFF)
        data[at + 46 + name_size:at + 46 + name_size] = extra
        end = data.rfind(b"PK\x05\x06")
        struct.pack_into("<I", data, end + 12, struct.unpack_from("<I", data, end + 12)[0]
                         + len(extra))
    report = _both_ways(bytes(data))
    assert report is None or report["ok"] is False


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


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_scanning_bundle_by_bundle_gives_the_same_report(
    small_bundle: tuple[bytes, SimulationResult], data: st.DataObject,
) -> None:
    """A chunk's bundles are scanned in groups bounded by size (hostile bundles are large):
    a group of one bundle gives the report a group of the whole chunk gives, errors included."""
    from unittest.mock import patch

    from fedpetition.core import logcheck

    original, _ = small_bundle
    with zipfile.ZipFile(io.BytesIO(original)) as z:
        bundles = sorted(n for n in z.namelist() if "/tile/entries/" in n)
        victim = data.draw(st.sampled_from(bundles), label="bundle")
        content = bytearray(z.read(victim))
    position = data.draw(st.integers(0, len(content) - 1), label="position")
    content[position] ^= data.draw(st.integers(1, 255), label="xor")
    tampered = rewrite(original, {victim: bytes(content)})
    whole = run(tampered)
    with patch.object(logcheck, "_GROUP_BYTES", 1):
        assert run(tampered) == whole


@pytest.mark.parametrize("group_bytes", [1, 1 << 22])
def test_time_order_is_checked_across_bundles(group_bytes: int) -> None:
    """An entry earlier than the last one of the bundle before it is refused at its index,
    whether the two bundles were scanned together or apart."""
    import dataclasses
    from unittest.mock import patch

    from fedpetition.core import logcheck, tiles
    from fedpetition.core.entries import parse_entry

    original, _ = build_bundle(nodes=1, signatures=800, duplicates=0, withdrawals=0)
    with zipfile.ZipFile(io.BytesIO(original)) as z:
        first, second = sorted(n for n in z.namelist() if "/tile/entries/" in n)[:2]
        before = tiles.decode_entry_bundle(z.read(first), 256)
        entries = tiles.decode_entry_bundle(z.read(second), 256)
    earlier = parse_entry(before[-1]).time - 3600
    entries[0] = dataclasses.replace(parse_entry(entries[0]), time=earlier).encode()
    tampered = rewrite(original, {second: tiles.encode_entry_bundle(entries)})
    with patch.object(logcheck, "_GROUP_BYTES", group_bytes):
        report = run(tampered)
    failed = [s for s in report["steps"] if s["status"] == "fail"]  # type: ignore[union-attr]
    assert [(s["step"], s["index"]) for s in failed] == [("entry-format", 256)]
    assert f"entry time {earlier} is before" in failed[0]["detail"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_python_hash_loop_gives_the_same_report(
    small_bundle: tuple[bytes, SimulationResult], data: st.DataObject,
) -> None:
    """Whether bundles are split and hashed by the compiled loop or by Python (where it
    was not built), a verifier reports the same, damaged entry bundles included."""
    from unittest.mock import patch

    from fedpetition.core import bundlehash

    original, _ = small_bundle
    with zipfile.ZipFile(io.BytesIO(original)) as z:
        bundles = sorted(n for n in z.namelist() if "/tile/entries/" in n)
        victim = data.draw(st.sampled_from(bundles), label="bundle")
        content = bytearray(z.read(victim))
    if data.draw(st.booleans(), label="damaged"):
        position = data.draw(st.integers(0, len(content) - 1), label="position")
        content[position] ^= data.draw(st.integers(1, 255), label="xor")
    tampered = rewrite(original, {victim: bytes(content)})
    expected = run(tampered)
    python = bundlehash.hash_entry_bundle_python
    with patch.object(bundlehash, "hash_entry_bundle", python):
        assert run(tampered) == expected
