"""Benchmarks for ``make bench`` (reduced sizes) and ``make bench-full``.

Every figure is printed with a baseline measured in the same run, on the same
data, so that the ratio stays meaningful on a shared, noisy machine.

verify: simulate a federation (5 nodes), then time ``fedpetition verify`` in a
child process and read its peak RSS; the baseline is a bare single-core Python
loop that only computes the RFC 9162 root of every log's leaves (entries read
into memory beforehand, not timed). Also timed: one worker, and the entry
bundles split and hashed by the Python loop instead of the compiled one (ADR 8).

node: signers through sign, mail and confirm against a real node process on
loopback (benchmarks/node_load.py); the baseline is a bare aiohttp echo server
driven by the same client at the same concurrency. At full size, 66,000 signers
on SQLite (a minute at the target's 1,000 a second), then 20,000 on SQLite and
on PostgreSQL with 1, 2 and 4 workers.

propagation: a new checkpoint from a node to 50 following nodes (small aiohttp
servers in a child process that verify every delivery's RFC 9421 signature), timed
from the confirmation's answer to the 50th follower, with one host (no
cosignature) and with three (quorum 1) (benchmarks/federation.py); the baseline
is the same body POSTed by plain aiohttp to the 50 followers at once.

federated-verify: three live nodes co-hosting a petition, their logs filled at
the storage layer, verified live (``fedpetition verify URL``) and through a
bundle (``fedpetition bundle`` + ``verify``) in child processes
(benchmarks/federation.py); the baselines are the offline verification of that
bundle and the bare root loop above.

nullifiers: the origin's blind VOPRF evaluations (benchmarks/nullifiers.py):
``voprf.blind_evaluate`` for batches of 1, 16 and 256, the host's blind and
finalize; then two live nodes, the evaluations/s the origin's evaluate endpoint
serves to a host's signed requests (batches of 256 and of 1), the host's whole
round trip, and the latency a host's signature waits for its nullifier. The
baselines are one bare ristretto255 scalar multiplication, and an unsigned POST
of the same body to a trivial aiohttp handler.

receipts: one signer's receipt served over HTTP from a node whose log holds
1,000,000 entries (100,000 reduced), the signer's half-way (benchmarks/receipts.py);
the baseline is ``GET /key`` on the same server.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from benchmarks.federation import bench_federated_verify, bench_propagation, status_mb
from benchmarks.node_load import FULL_SECONDS, FULL_SIGNERS, bench_node_load, postgres_unreachable
from benchmarks.nullifiers import bench_nullifiers
from benchmarks.receipts import bench_receipts
from fedpetition.core import bundlehash, tiles
from fedpetition.simulate import SimulationSpec, simulate
from fedpetition.verify.archive import ZipBundleWriter

OUT = Path("bench-out")
# The node benchmark also runs on PostgreSQL where this server answers
# (FEDPETITION_BENCH_POSTGRES names another).
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def _format_tag() -> str:
    """A short hash of the code that shapes a simulated bundle: a cached bundle written by
    an older format (a new document field, say) is never verified by a newer verifier."""
    import hashlib

    import fedpetition.core.documents
    import fedpetition.core.entries
    import fedpetition.simulate

    digest = hashlib.sha256()
    for module in (fedpetition.simulate, fedpetition.core.documents, fedpetition.core.entries):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()[:10]


def make_bundle(signatures: int, nodes: int = 5) -> Path:
    path = OUT / f"verify-{nodes}x{signatures}-{_format_tag()}.zip"
    if not path.exists():
        OUT.mkdir(exist_ok=True)
        tmp = path.with_suffix(".tmp")
        started = time.perf_counter()
        with ZipBundleWriter(tmp) as writer:
            simulate(SimulationSpec(nodes, signatures, signatures // 50, signatures // 200,
                                    seed=1), writer.add)
        tmp.rename(path)
        print(f"  (simulated {signatures:,} signatures in {time.perf_counter() - started:.1f} s)")
    return path


def bare_root_seconds(path: Path) -> tuple[float, int]:
    """Baseline: RFC 9162 roots of every log's entries, a plain loop on one core."""
    logs: dict[str, list[bytes]] = {}
    with zipfile.ZipFile(path) as z:
        for name in sorted(z.namelist()):
            if "/tile/entries/" not in name:
                continue
            prefix = name.split("/tile/entries/")[0]
            coord = tiles.parse_path(name[len(prefix) + 1:])
            logs.setdefault(prefix, []).extend(
                tiles.decode_entry_bundle(z.read(name), coord.width))
    count = sum(len(v) for v in logs.values())
    sha256 = hashlib.sha256
    started = time.perf_counter()
    for entries in logs.values():
        stack: list[tuple[int, bytes]] = []
        for entry in entries:
            node, height = sha256(b"\x00" + entry).digest(), 0
            while stack and stack[-1][0] == height:
                node = sha256(b"\x01" + stack.pop()[1] + node).digest()
                height += 1
            stack.append((height, node))
        root = stack.pop()[1] if stack else sha256(b"").digest()
        while stack:
            root = sha256(b"\x01" + stack.pop()[1] + root).digest()
    return time.perf_counter() - started, count


def _peak_mb(pid: int) -> float:
    return status_mb(pid, "VmHWM") or 0.0


def _children(pid: int) -> list[int]:
    """The live children of ``pid``: one small read, as polling must disturb little."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as children:
            return [int(child) for child in children.read().split()]
    except OSError:
        return []


def verify_seconds(path: Path, *options: str, python_loop: bool = False
                   ) -> tuple[float, float, float]:
    """Wall time, peak RSS of the verifying process, and the sum of its and its worker
    processes' peaks (MB), of ``fedpetition verify`` in a child process.

    Not ru_maxrss: a child inherits this process's peak at exec (this one may have
    just simulated the bundle). Each process's own high-water mark (VmHWM) is read
    from /proc every 20 ms while it runs; only growth in its last 20 ms could be
    missed. (Listing every process in /proc at each poll, as this once did, took a
    fifth of a core away from the verifier.) ``python_loop`` makes the child split
    and hash entry bundles in Python even where the compiled loop was built.
    """
    env = {**os.environ, "FEDPETITION_PURE_PYTHON": "1"} if python_loop else None
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "fedpetition.cli", "verify",
                                    str(path), *options], stdout=subprocess.DEVNULL,
                                   stderr=err, env=env)
        own = 0.0
        workers: dict[int, float] = {}
        while process.poll() is None:
            own = max(own, _peak_mb(process.pid))
            for child in _children(process.pid):
                workers[child] = max(workers.get(child, 0.0), _peak_mb(child))
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        if process.returncode != 0:
            err.seek(0)
            sys.exit(f"verify failed: {err.read().decode(errors='replace').strip()}")
    return elapsed, own, own + sum(workers.values())


def bench_verify(signatures: int, runs: int = 3) -> None:
    print(f"verify: federated tally of {signatures:,} signatures across 5 logs "
          f"(median of {runs} runs)")
    path = make_bundle(signatures)
    # verify first: a child forked from a parent holding the baseline's entries in
    # memory would count those shared pages in its peak RSS.
    verify_seconds(path)  # once, unmeasured: compiled modules and the file in the page cache
    timed = [verify_seconds(path) for _ in range(runs)]
    elapsed, rss, tree = (statistics.median(column) for column in zip(*timed, strict=True))
    serial, serial_rss, _ = verify_seconds(path, "--workers", "1")
    python, python_rss, _ = verify_seconds(path, python_loop=True)
    baselines = [bare_root_seconds(path) for _ in range(runs)]
    baseline = statistics.median(seconds for seconds, _ in baselines)
    count = baselines[0][1]
    print(f"  entries                       {count:,}")
    print(f"  fedpetition verify            {elapsed:6.2f} s   peak RSS {rss:4.0f} MB "
          f"(with its workers {tree:.0f} MB)   runs: "
          + ", ".join(f"{t:.2f} s" for t, _, _ in timed))
    print(f"  fedpetition verify --workers 1 {serial:5.2f} s   peak RSS {serial_rss:4.0f} MB")
    print(f"  verify with the Python loop   {python:6.2f} s   peak RSS {python_rss:4.0f} MB"
          + ("" if bundlehash.COMPILED else "   (the compiled loop is not built: all "
             "runs above used Python's too)"))
    print(f"  bare RFC 9162 roots (1 core)  {baseline:6.2f} s   runs: "
          + ", ".join(f"{t:.2f} s" for t, _ in baselines))
    print(f"  ratio verify/baseline         {elapsed / baseline:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="the sizes the targets name")
    parser.add_argument("--only", choices=BENCHMARKS, help="run this benchmark alone")
    parser.add_argument("--verify-signatures", type=int, metavar="N",
                        help="verify a federation of N signatures (default: 1,000,000 with "
                        "--full, else 100,000); its bundle is simulated once into bench-out/")
    args = parser.parse_args()
    if args.only in (None, "verify"):
        bench_verify(args.verify_signatures or (1_000_000 if args.full else 100_000))
    if args.only in (None, "node"):
        postgres = os.environ.get("FEDPETITION_BENCH_POSTGRES", DEFAULT_POSTGRES)
        why = postgres_unreachable(postgres)
        if why is not None:
            print(f"node on PostgreSQL: skipped, no server at {postgres.split('@')[-1]}: {why}")
        if args.full:  # target 2: 1,000 confirmed a second, sustained for 60 s
            bench_node_load(FULL_SIGNERS, seconds=FULL_SECONDS)
            if not why:
                bench_node_load(20_000, seconds=120.0, postgres=postgres)
        else:
            bench_node_load(2_000, seconds=40.0, postgres=None if why else postgres)
    if args.only in (None, "propagation"):
        runs = 5 if args.full else 3
        bench_propagation(50, runs, hosts=1)
        bench_propagation(50, runs, hosts=3)
    if args.only in (None, "federated-verify"):
        bench_federated_verify(100_000 if args.full else 10_000)
    if args.only in (None, "nullifiers"):
        bench_nullifiers(args.full)
    if args.only in (None, "receipts"):
        bench_receipts(1_000_000 if args.full else 100_000)


BENCHMARKS = ("verify", "node", "propagation", "federated-verify", "nullifiers", "receipts")


if __name__ == "__main__":
    main()
