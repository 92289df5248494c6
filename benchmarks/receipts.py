"""Receipts from a large log: how fast a node serves one, and how big it is.

A real node (its aiohttp app on a loopback socket, SQLite storage) gets a petition
whose log is filled, at the storage layer as the sequencer would commit it, with
``--entries`` sign entries (1,000,000 with ``--full``, 100,000 by default); half-way,
one real signer signs and confirms through the HTTP API and is sequenced among them
(an entry in the middle of the log has a full-length proof; the last one's is short).
The benchmark then asks for that signer's receipt ``--requests`` times over HTTP
(``GET /api/signatures/<token>/receipt``: the inclusion proof is computed from the
tiles in storage on every request) and times each answer, and times the node's
``receipt`` method alone (no HTTP). Every receipt is checked with the verifier's
``verify_receipt``.

The first receipts after the fill wait behind its last writes (SQLite checkpoints
its write-ahead log into the database file): ``WARM_UP`` receipts are asked for
before the timed ones, and the slowest timed one is printed apart.

Baseline, in the same run and on the same server: ``GET /key`` (the node's
verifier key, a constant), for the cost of an HTTP round trip on loopback.

    python -m benchmarks.receipts [--full] [--entries N] [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from benchmarks.federation import BenchNode, append_batch, make_nodes
from fedpetition.core.receipts import Receipt, verify_receipt
from fedpetition.node.sequencer import PetitionLog

TARGET_MS = 5.0  # an inclusion proof for a 1,000,000-entry log, served
TARGET_BYTES = 2048  # a receipt file
BATCH = 8192  # entries committed per batch while filling
WARM_UP = 20  # receipts asked for, not timed, before the timed ones


@dataclass
class ReceiptResult:
    entries: int
    filled: float
    served_ms: list[float]
    method_ms: list[float]
    baseline_ms: list[float]
    size: int
    index: int
    proof_hashes: int


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def timed_get(session: aiohttp.ClientSession, url: str) -> tuple[float, bytes]:
    began = time.perf_counter()
    async with session.get(url) as response:
        body = await response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}: {response.status} {body[:200]!r}")
    return (time.perf_counter() - began) * 1000, body


async def fill(node: BenchNode, current: PetitionLog, count: int, rng: random.Random) -> None:
    for start in range(0, count, BATCH):
        await append_batch(node.live, current,
                           [rng.randbytes(32) for _ in range(min(BATCH, count - start))], rng)


async def wait_counted(node: BenchNode, size: int) -> None:
    """Until the log has ``size`` entries (the sequencer runs in the background)."""
    deadline = time.monotonic() + 60
    while (await node.log()).state.size < size:
        if time.monotonic() > deadline:
            raise RuntimeError("the signature was not sequenced within 60 s")
        await asyncio.sleep(0.05)


async def bench_receipts_async(entries: int, requests: int) -> ReceiptResult:
    folder = Path(tempfile.mkdtemp(prefix="receipts-"))
    nodes: list[BenchNode] = []
    try:
        nodes = await make_nodes(folder, 1)
        (node,) = nodes
        await node.create_petition()
        current = await node.log()
        rng = random.Random(2016)
        began = time.perf_counter()
        await fill(node, current, entries // 2, rng)
        token = await node.sign("receipt@example.org")
        await node.confirm(token)
        await wait_counted(node, current.state.size + 1)
        await fill(node, current, entries - entries // 2, rng)
        filled = time.perf_counter() - began
        url = f"{node.url}/api/signatures/{token}/receipt"
        async with aiohttp.ClientSession() as session:
            for _ in range(WARM_UP):  # the first after the fill wait for its last writes
                await timed_get(session, url)
            served, baseline, size, receipt = [], [], 0, None
            for _ in range(requests):
                ms, body = await timed_get(session, url)
                served.append(ms)
                receipt = Receipt.decode(body)
                size = len(body)
                ms, _ = await timed_get(session, f"{node.url}/key")
                baseline.append(ms)
        assert receipt is not None
        verify_receipt(receipt)  # raises if the proof or a signature does not hold
        method = []
        for _ in range(requests):
            began = time.perf_counter()
            data = await node.live.receipt(token)
            method.append((time.perf_counter() - began) * 1000)
            assert data is not None
        return ReceiptResult(entries, filled, served, method, baseline, size, receipt.index,
                             len(receipt.proof))
    finally:
        for running in nodes:
            await running.stop()
        shutil.rmtree(folder, ignore_errors=True)


def bench_receipts(entries: int, requests: int = 200) -> ReceiptResult:
    print(f"receipts: one signer after {entries:,} entries, {requests} receipts served")
    result = asyncio.run(bench_receipts_async(entries, requests))
    served, method, base = result.served_ms, result.method_ms, result.baseline_ms
    ratio = statistics.median(served) / statistics.median(base)
    print(f"  log filled                    {result.filled:8.1f} s "
          f"({result.entries / result.filled:,.0f} entries/s at the storage layer)")
    print(f"  entry index / proof hashes    {result.index:,} / {result.proof_hashes}")
    print(f"  receipt served p50 / p99      {statistics.median(served):8.2f} / "
          f"{p(served, 99):.2f} ms   (target {TARGET_MS:.0f} ms)")
    print(f"  Node.receipt p50 / p99        {statistics.median(method):8.2f} / "
          f"{p(method, 99):.2f} ms   (no HTTP)")
    print(f"  GET /key p50 / p99 (baseline) {statistics.median(base):8.2f} / "
          f"{p(base, 99):.2f} ms")
    print(f"  slowest receipt served        {max(served):8.2f} ms")
    print(f"  ratio receipt / baseline      {ratio:8.2f}")
    print(f"  receipt file                  {result.size:8,} bytes   "
          f"(target < {TARGET_BYTES:,})")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="1,000,000 entries")
    parser.add_argument("--entries", type=int, help="entries before the signer's")
    parser.add_argument("--requests", type=int, default=200, help="receipts asked for")
    args = parser.parse_args()
    bench_receipts(args.entries or (1_000_000 if args.full else 100_000), args.requests)


if __name__ == "__main__":
    main()
