"""The command line: exit codes, one-line reasons, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from fedpetition.cli import main


def fedpetition(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fedpetition.cli", *args],
                          capture_output=True, text=True, timeout=120)


def test_simulate_verify_and_receipt(tmp_path: Path) -> None:
    bundle, receipt = tmp_path / "b.zip", tmp_path / "r.fpr"
    done = fedpetition("simulate", "--nodes", "3", "--signatures", "500", "--duplicates", "20",
                       "--withdrawals", "10", "--seed", "9", "--out", str(bundle),
                       "--receipt", str(receipt))
    assert done.returncode == 0, done.stderr
    assert "expected federated total: 470" in done.stdout

    done = fedpetition("verify", str(bundle))
    assert done.returncode == 0, done.stdout + done.stderr
    for step in ("bundle-archive", "petition-documents", "host-roster", "node-keys",
                 "checkpoint-signature", "witness-quorum", "bundle-members", "entry-format",
                 "tree-hashes", "log-rules", "tally", "manifest-claims"):
        assert f"PASS  {step}" in done.stdout
    assert "federated total   470" in done.stdout

    done = fedpetition("verify", str(bundle), "--json")
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["tally"]["total"] == 470
    for log in report["logs"]:
        assert set(log) >= {"origin", "key", "tree_size", "root_hash", "counted"}

    done = fedpetition("verify-receipt", str(receipt))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS  receipt-inclusion" in done.stdout


def test_tampered_bundle_fails_with_the_step_name(tmp_path: Path, bundle_file: Path) -> None:
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(bundle_file) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            content = src.read(info)
            if "/tile/entries/000" in info.filename:
                content = content[:100] + bytes([content[100] ^ 1]) + content[101:]
            dst.writestr(info, content)
    done = fedpetition("verify", str(tampered))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith("verify: FAIL ")
    assert ("log node-a.example/log/" in lines[0] and "entry " in lines[0]) or \
        "tree-hashes" in lines[0]


def test_tampered_receipt(tmp_path: Path) -> None:
    bundle, receipt = tmp_path / "b.zip", tmp_path / "r.fpr"
    assert main(["simulate", "--nodes", "2", "--signatures", "50", "--seed", "2",
                 "--out", str(bundle), "--receipt", str(receipt)]) == 0
    data = bytearray(receipt.read_bytes())
    data[-5] ^= 0x01  # inside the private record: the commitment no longer opens
    receipt.write_bytes(bytes(data))
    done = fedpetition("verify-receipt", str(receipt))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        ["verify", "/nonexistent/bundle.zip"],
        ["verify-receipt", "/nonexistent/receipt"],
        ["simulate", "--nodes", "1", "--signatures", "10", "--duplicates", "2", "--out", "x"],
        ["simulate", "--nodes", "2", "--signatures", "10", "--withdrawals", "11", "--out", "x"],
        ["verify", "README.md"],
        ["verify", "--origin-key", "nonsense", "README.md"],
    ],
)
def test_bad_input_one_line_no_traceback(args: list[str]) -> None:
    done = fedpetition(*args)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and done.stderr.strip()


def test_not_a_bundle(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"this is not an archive")
    done = fedpetition("verify", str(junk))
    assert done.returncode == 1
    assert done.stderr.startswith("verify: FAIL bundle-archive:")
    assert "FAIL  bundle-archive" in done.stdout
    done = fedpetition("verify", str(junk), "--json")
    report = json.loads(done.stdout)
    assert report["ok"] is False and report["steps"][0]["step"] == "bundle-archive"
    assert report["steps"][0]["status"] == "fail"


def _die(job: object) -> None:
    os._exit(9)


def test_a_dying_worker_is_a_one_line_error(bundle_file: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A verifying worker killed mid-run (out of memory, say) ends the command with a reason."""
    from fedpetition.verify import parallel

    monkeypatch.setattr(parallel, "_check", _die)  # the forked workers inherit it
    assert main(["verify", str(bundle_file), "--workers", "2"]) == 1
    err = capsys.readouterr().err
    assert "a worker process stopped" in err and "--workers 1" in err
    assert "Traceback" not in err
