"""The walkthroughs in examples/ run as a reader would run them, and end as they say."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.sh"))
VENV_BIN = ROOT / ".venv" / "bin"
TIMEOUT = 120.0

# Lines each walkthrough must print (regular expressions, one line each), and how many times.
# A walkthrough not named here must at least end a check with an "OK: ..." line.
EXPECTED: dict[str, list[tuple[str, int]]] = {
    "verify-a-tally.sh": [(r"OK: all \d+ steps passed", 2), (r"total 4810", 1)],
    "check-a-receipt.sh": [(r"OK: this signature is in the log at that checkpoint", 1)],
    "join-a-petition.sh": [
        (r"Alice answers: 127\.0\.0\.1:\d+ accepted", 1),
        (r"PASS  receipt-consistency .*", 1),
        (r"OK: this signature is in the log at that checkpoint", 1),
        (r".*/federated: total 2; .*", 2),
        (r"  federated total   2", 2),
        (r"OK: all \d+ steps passed", 2),
    ],
}
NEEDS = {"join-a-petition.sh": ["curl"]}


def run(script: Path) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with bash from the repository root; on timeout, stop its whole group
    (the nodes a walkthrough started in the background included)."""
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    with subprocess.Popen(["bash", str(script)], cwd=ROOT, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          start_new_session=True) as process:
        try:
            out, err = process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            pytest.fail(f"{script.name} did not finish in {TIMEOUT:.0f} s\n{out}\n{err}")
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_every_example_has_expectations() -> None:
    assert EXAMPLES, "no walkthroughs found in examples/"
    assert set(EXPECTED) <= {p.name for p in EXAMPLES}


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script: Path) -> None:
    if not (VENV_BIN / "fedpetition").exists():
        pytest.skip("the walkthroughs run .venv/bin/fedpetition: run `make venv` first")
    for tool in NEEDS.get(script.name, []):
        if shutil.which(tool) is None:
            pytest.skip(f"{script.name} needs {tool}")
    result = run(script)
    assert result.returncode == 0, (
        f"{script.name} exited {result.returncode}\n--- stdout\n{result.stdout}\n"
        f"--- stderr\n{result.stderr}")
    for pattern, times in EXPECTED.get(script.name, [(r"OK: .*", 1)]):
        found = re.findall(f"^{pattern}$", result.stdout, re.MULTILINE)
        assert len(found) >= times, (
            f"{script.name}: expected {times} line(s) matching {pattern!r}, found "
            f"{len(found)}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}")
