"""Nullifier benchmarks (issue 5): the origin's blind VOPRF evaluations, alone and over HTTP.

core
    In this process, on one core: ``voprf.blind_evaluate`` (RFC 9497 BlindEvaluate
    with its batched DLEQ proof) over batches of 1, 16 and 256 blinded elements
    (evaluations/s), the host's side per element (``blind``, and ``finalize``,
    which checks the batch's proof and unblinds), and the origin's own unblinded
    ``evaluate`` (what ``Node.local_nullifier`` runs at a local confirmation).
    Baseline, same run: one bare ristretto255 scalar multiplication
    (``rbcl.crypto_scalarmult_ristretto255``, libsodium through ctypes), measured
    before and after the rest and averaged; the ratio evaluations/s ÷ scalar
    mults/s says how many bare multiplications' worth one evaluation costs. The
    multiplications each call makes are counted (rbcl's two multiplication
    functions wrapped while one call of each size runs, outside the timing).

http
    Two real nodes in this process on loopback, set up as in
    ``tests/federation/nodes.py`` (``init_node``, the harness's fast settings,
    loopback peers allowed, any node admitted as a host) and, as in
    ``benchmarks/node_load.py``, the per-IP signing limits raised since every
    signer is 127.0.0.1. The origin creates a petition, the host asks to host it
    (``POST /api/hosting``) and the benchmark waits until both rosters list both.
    256 signatures are signed and confirmed on the host through its API; its own
    nullifier loop gets their nullifiers from the origin.

    served by the origin
        Batches of blinded elements (256 or 1; made beforehand with
        ``voprf.blind`` from real nullifier inputs, 8 distinct batches used in
        turn) POSTed to the origin's ``/petitions/<slug>/evaluate`` by the host's
        own ``Peers.post``: RFC 9421-signed with the host's key, authenticated,
        rate-limited and counted durably (``add_evaluations``) by the origin,
        exactly the request a host sends. The client's work is only signing and
        sending, so the figure is the origin's. One request at a time (one host:
        its nullifier loop is sequential) and two at a time (two hosts). Every
        distinct answer is finalized afterwards: its proof must verify.
    a host's whole round trip
        ``host.federation._nullifiers_for(record, batch)``, the host's own code,
        on the 256 stored signatures: open each sealed record, blind, POST,
        check the proof, unblind. It must give the nullifiers stored by the
        nullifier loop. Host and origin share this process's two cores and GIL.
    latency per signature
        A signature signed and confirmed through a node's API; the time from the
        confirmation's answer to the moment the signature's row in the node's
        storage holds its nullifier (polled every millisecond), on the host (the
        blind evaluation by the origin) and on the origin (evaluated during the
        confirmation: only the poll's own delay). Median and max; the nodes are
        left idle between signatures.
    baseline
        The same client (the host's ``Fetcher``) POSTing a body of the same size,
        unsigned, to a trivial aiohttp handler on loopback in this process that
        reads it and answers with a body of the size of the origin's answer
        (requests/s), at the same concurrency.

    The origin limits each host to 3,600 evaluate requests an hour per petition
    (``EVALUATIONS_PER_HOST_PER_HOUR``): its rate limiter is replaced by a fresh
    one before each measurement, since batches of one exceed that within seconds.

    python -m benchmarks.nullifiers [--full] [core | http]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rbcl
from aiohttp import web

from benchmarks.federation import (
    SLUG,
    BenchNode,
    co_host,
    listening_socket,
    make_nodes,
    wait_for,
)
from benchmarks.node_load import HIGH_LIMIT, set_setting
from fedpetition.core import nullifiers, voprf
from fedpetition.federation import activities as acts
from fedpetition.node.federation import EVALUATE_PATH, MAX_EVALUATION_BATCH
from fedpetition.node.service import token_hash
from fedpetition.node.storage import PetitionRecord, SignatureRecord
from fedpetition.node.storage.sqlite import SQLiteStorage

TARGET = 3000.0  # nullifier evaluations per second at the origin, batched (issue 5)
CORE_BATCHES = (1, 16, MAX_EVALUATION_BATCH)
DISTINCT_BATCHES = 8  # blinded batches prepared for the HTTP runs, sent in turn
SIGNATURES = MAX_EVALUATION_BATCH  # signed on the host for its round trips


@dataclass(frozen=True)
class Sizes:
    core_seconds: float  # per core measurement
    batched_seconds: float  # per HTTP measurement with batches of 256
    single_requests: int  # per HTTP measurement with batches of 1
    latency_signatures: int  # per node


REDUCED = Sizes(0.3, 0.5, 100, 5)
FULL = Sizes(2.0, 5.0, 1500, 20)


def _json(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


# --------------------------------------------------------------------------- core


def per_second(fn: Callable[[], object], items: int, seconds: float) -> float:
    """Items per second of ``fn`` (each call handles ``items``), called for ``seconds``."""
    fn()  # warm up
    calls = 0
    began = time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - began
        if elapsed >= seconds:
            return calls * items / elapsed


@contextlib.contextmanager
def counting_mults() -> Iterator[dict[str, int]]:
    """Count rbcl's variable-base and fixed-base scalar multiplications meanwhile.

    ``voprf`` looks the functions up on the ``rbcl`` module at each call, so
    wrapping the module's attributes counts every multiplication it makes.
    """
    counts = {"variable": 0, "base": 0}
    variable = rbcl.crypto_scalarmult_ristretto255
    base = rbcl.crypto_scalarmult_ristretto255_base

    def count_variable(s: bytes, p: bytes) -> bytes:
        counts["variable"] += 1
        out: bytes = variable(s, p)
        return out

    def count_base(s: bytes) -> bytes:
        counts["base"] += 1
        out: bytes = base(s)
        return out

    rbcl.crypto_scalarmult_ristretto255 = count_variable
    rbcl.crypto_scalarmult_ristretto255_base = count_base
    try:
        yield counts
    finally:
        rbcl.crypto_scalarmult_ristretto255 = variable
        rbcl.crypto_scalarmult_ristretto255_base = base


@dataclass
class CoreResult:
    seconds: float
    mults: float  # bare variable-base scalar multiplications per second (baseline)
    mults_runs: tuple[float, float]  # before and after
    base_mults: float  # fixed-base, for reference
    evaluate: dict[int, float] = field(default_factory=dict)  # batch -> evaluations/s
    evaluate_mults: dict[int, tuple[int, int]] = field(default_factory=dict)  # (var, base)
    finalize: dict[int, float] = field(default_factory=dict)  # batch -> elements/s
    finalize_mults: dict[int, tuple[int, int]] = field(default_factory=dict)
    blind: float = 0.0  # elements/s
    local: float = 0.0  # voprf.evaluate (the origin's own signers), per second
    local_with_key: float = 0.0  # Node.local_nullifier's work: derive the key, then evaluate


def bench_core(seconds: float) -> CoreResult:
    petition_id = "bench.example/petitions/clean-air"
    secret = os.urandom(32)
    sk, pk = nullifiers.petition_key_pair(secret, petition_id)
    n = MAX_EVALUATION_BATCH
    inputs = [nullifiers.nullifier_input(petition_id, f"signer{i}@example.org")
              for i in range(n)]
    blinds, blinded = (list(x) for x in zip(*(voprf.blind(x) for x in inputs), strict=True))
    scalar = rbcl.crypto_core_ristretto255_scalar_random()
    point = blinded[0]

    def mults() -> float:
        return per_second(lambda: [rbcl.crypto_scalarmult_ristretto255(scalar, point)
                                   for _ in range(100)], 100, seconds)

    before = mults()
    base = per_second(lambda: [rbcl.crypto_scalarmult_ristretto255_base(scalar)
                               for _ in range(100)], 100, seconds)
    result = CoreResult(seconds, 0.0, (before, 0.0), base)
    answers: dict[int, tuple[list[bytes], bytes]] = {}
    for size in CORE_BATCHES:
        batch = blinded[:size]
        result.evaluate[size] = per_second(lambda b=batch: voprf.blind_evaluate(sk, pk, b),
                                           size, seconds)
        with counting_mults() as counts:
            answers[size] = voprf.blind_evaluate(sk, pk, batch)
        result.evaluate_mults[size] = (counts["variable"], counts["base"])
    result.blind = per_second(lambda: [voprf.blind(x) for x in inputs], n, seconds)
    for size in (1, n):
        evaluated, proof = answers[size]

        def fin(size: int = size, evaluated: list[bytes] = evaluated,
                proof: bytes = proof) -> list[bytes]:
            return voprf.finalize(inputs[:size], blinds[:size], evaluated, blinded[:size],
                                  proof, pk)

        outputs = fin()
        if outputs != [voprf.evaluate(sk, x) for x in inputs[:size]]:
            raise RuntimeError("finalize disagrees with evaluate")
        result.finalize[size] = per_second(fin, size, seconds)
        with counting_mults() as counts:
            fin()
        result.finalize_mults[size] = (counts["variable"], counts["base"])
    result.local = per_second(lambda: voprf.evaluate(sk, inputs[0]), 1, seconds)
    result.local_with_key = per_second(
        lambda: voprf.evaluate(nullifiers.petition_key_pair(secret, petition_id)[0], inputs[0]),
        1, seconds)
    after = mults()
    result.mults_runs = (before, after)
    result.mults = (before + after) / 2
    return result


def print_core(r: CoreResult) -> None:
    def row(label: str, text: str) -> None:
        print(f"  {label:<38}{text}")

    print(f"  core, one process, one core ({r.seconds:g} s a measurement):")
    row("bare scalar mult (baseline)", f"{r.mults:9,.0f} /s   ({r.mults_runs[0]:,.0f} before, "
                                       f"{r.mults_runs[1]:,.0f} after; "
                                       f"{1e6 / r.mults:.1f} µs)")
    row("bare fixed-base scalar mult", f"{r.base_mults:9,.0f} /s   ({1e6 / r.base_mults:.1f} µs)")
    for size, rate in r.evaluate.items():
        var, base = r.evaluate_mults[size]
        row(f"blind_evaluate, batch {size}",
            f"{rate:9,.0f} evaluations/s   ratio to mults {rate / r.mults:5.3f}   "
            f"({var} mults + {base} fixed-base a batch)")
    row("host: blind", f"{1e6 / r.blind:9.1f} µs an element   ({r.blind:,.0f}/s)")
    for size, rate in r.finalize.items():
        var, base = r.finalize_mults[size]
        row(f"host: finalize, batch {size}",
            f"{1e6 / rate:9.1f} µs an element   ({var} mults + {base} fixed-base a batch)")
    blind_fin = 1e6 / r.blind + 1e6 / r.finalize[MAX_EVALUATION_BATCH]
    row("host: blind + finalize, batch 256", f"{blind_fin:9.1f} µs an element   "
                                             f"({1e6 / blind_fin:,.0f}/s)")
    row("origin: evaluate (own signer)", f"{1e6 / r.local:9.1f} µs   with key derivation "
                                         f"{1e6 / r.local_with_key:.1f} µs")
    best = r.evaluate[MAX_EVALUATION_BATCH]
    row("target, batched", f"{TARGET:9,.0f} evaluations/s: {'met' if best >= TARGET else 'NOT met'}"
                           f" by blind_evaluate alone ({best / TARGET:.1f}x)")


# --------------------------------------------------------------------------- http


async def make_pair(folder: Path) -> list[BenchNode]:
    """An origin and a host, configured as tests/federation/nodes.py configures nodes,
    with the per-IP signing limits raised (every signer here is 127.0.0.1)."""

    def high_limits(text: str) -> str:
        for key in ("sign_per_ip_per_hour", "sign_per_email_domain_per_hour",
                    "confirm_per_ip_per_hour"):
            text = set_setting(text, "limits", key, str(HIGH_LIMIT))
        return text

    return await make_nodes(folder, 2, adjust=high_limits)


@dataclass
class Rate:
    requests: int
    items: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.items / self.seconds

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def ms_per_request(self) -> float:
        return 1000 * self.seconds / self.requests


async def throughput(call: Callable[[int], Awaitable[int]], workers: int, *,
                     seconds: float | None = None, requests: int | None = None,
                     warmup: int = 3) -> Rate:
    """``workers`` loops calling ``call(i)`` (which returns the items it handled) until
    ``seconds`` have passed or ``requests`` calls were started."""
    for i in range(warmup):
        await call(i)
    started = items = 0
    began = time.perf_counter()
    deadline = began + seconds if seconds is not None else float("inf")

    async def worker() -> None:
        nonlocal started, items
        while (requests is None or started < requests) and time.perf_counter() < deadline:
            i = started
            started += 1
            handled = await call(i)  # not ``items += await``: that reads items before awaiting
            items += handled

    await asyncio.gather(*(worker() for _ in range(workers)))
    return Rate(started, items, time.perf_counter() - began)


class Echo:
    """The baseline's server: a trivial aiohttp handler that reads the body and answers
    with ``answer`` (set to the size of the origin's answer)."""

    def __init__(self) -> None:
        self.sock = listening_socket()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/echo"
        self.runner: web.AppRunner | None = None
        self.answer = b"{}"

    async def echo(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=self.answer, content_type="application/json")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/echo", self.echo)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        self.sock.close()


@dataclass
class Prepared:
    """Blinded batches of one size, ready to POST, and what finalizing them needs."""

    inputs: list[list[bytes]]
    blinds: list[list[bytes]]
    blinded: list[list[bytes]]
    bodies: list[bytes]


def prepare(petition_id: str, size: int) -> Prepared:
    p = Prepared([], [], [], [])
    for k in range(DISTINCT_BATCHES):
        inputs = [nullifiers.nullifier_input(petition_id, f"bench{k}.{i}@example.org")
                  for i in range(size)]
        blinds, blinded = (list(x) for x in zip(*(voprf.blind(x) for x in inputs), strict=True))
        p.inputs.append(inputs)
        p.blinds.append(blinds)
        p.blinded.append(blinded)
        p.bodies.append(_json({"blinded": [acts.b64(b) for b in blinded]}))
    return p


@dataclass
class HttpResult:
    setup: float = 0.0
    served: dict[tuple[int, int], Rate] = field(default_factory=dict)  # (batch, workers)
    round_trip: dict[int, Rate] = field(default_factory=dict)  # batch
    baseline: dict[tuple[int, int], Rate] = field(default_factory=dict)  # (batch, workers)
    body_sizes: dict[int, tuple[int, int]] = field(default_factory=dict)  # request, answer
    host_latency: list[float] = field(default_factory=list)
    origin_latency: list[float] = field(default_factory=list)
    verified: int = 0  # answers whose proofs were checked


async def nullifier_latency(running: BenchNode, email: str) -> float:
    """Confirm a new signature through the API; seconds from the answer to its nullifier."""
    token = await running.sign(email)
    await running.confirm(token)
    answered = time.perf_counter()
    hashed = token_hash(token)
    storage = running.live.storage
    while True:
        row = await storage.signature_by_token(hashed)
        if row is not None and row.nullifier is not None:
            return time.perf_counter() - answered
        if time.perf_counter() - answered > 30:
            raise RuntimeError(f"no nullifier for {email} after 30 s")
        await asyncio.sleep(0.001)


async def idle(nodes: Sequence[BenchNode]) -> None:
    """Wait until no node has federation work left, twice, 0.2 s apart (a sequencer
    batch may still be on its way to a cosigning round)."""
    for _ in range(2):
        await wait_for("the nodes to be idle",
                       lambda: _all_quiet(nodes))
        await asyncio.sleep(0.2)


# The federation's background tasks that run for as long as the node does.
PERMANENT_TASKS = frozenset({"deliveries", "federated counts", "nullifiers"})


async def quiet(running: BenchNode) -> bool:
    """As ``benchmarks.federation.quiet``, the nullifier loop counted as permanent:
    no publishing, no count being refreshed, no delivery queued, no nullifier awaited."""
    federation = running.federation
    storage = running.live.storage
    return (all(task.get_name() in PERMANENT_TASKS for task in federation._tasks)
            and all(task.done() for task in federation._publishers.values())
            and await storage.pending_deliveries() == 0
            and not await storage.awaiting_nullifiers(1))


async def _all_quiet(nodes: Sequence[BenchNode]) -> bool:
    return all([await quiet(running) for running in nodes])


async def bench_http_async(sizes: Sizes) -> HttpResult:
    result = HttpResult()
    folder = Path(tempfile.mkdtemp(prefix="fedpetition-nullifiers-"))
    echo = Echo()
    nodes: list[BenchNode] = []
    try:
        began = time.monotonic()
        await echo.start()
        nodes = await make_pair(folder)
        origin, host = nodes
        await co_host(nodes)

        # 256 signatures on the host, through its API; its nullifier loop fetches theirs.
        semaphore = asyncio.Semaphore(8)

        async def sign(i: int) -> str:
            async with semaphore:
                token = await host.sign(f"signer{i}@example.org")
                await host.confirm(token)
                return token

        tokens = await asyncio.gather(*(sign(i) for i in range(SIGNATURES)))
        storage = host.live.storage

        async def all_nullified() -> bool:
            return not await storage.awaiting_nullifiers(1)

        await wait_for("the host's nullifiers", all_nullified)
        await idle(nodes)
        result.setup = time.monotonic() - began
        record = await storage.petition_by_slug(SLUG)
        assert record is not None
        rows = [await storage.signature_by_token(token_hash(t)) for t in tokens]
        signatures: list[SignatureRecord] = [r for r in rows if r is not None]
        stored = {r.id: r.nullifier for r in signatures}
        if len(signatures) != SIGNATURES or None in stored.values():
            raise RuntimeError("the host's signatures or nullifiers are missing")
        await served_by_origin(result, sizes, origin, host, record)
        await round_trips(result, sizes, origin, host, record, signatures, stored)
        await baselines(result, sizes, host, echo)
        await idle(nodes)
        for i in range(sizes.latency_signatures):
            result.host_latency.append(await nullifier_latency(host, f"late{i}@example.org"))
            await idle(nodes)
            result.origin_latency.append(await nullifier_latency(origin, f"own{i}@example.org"))
            await idle(nodes)
    finally:
        for running in nodes:
            await running.stop()
        await echo.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return result


async def served_by_origin(result: HttpResult, sizes: Sizes, origin: BenchNode,
                           host: BenchNode, record: PetitionRecord) -> None:
    """Signed POSTs of prepared batches to the origin's evaluate endpoint."""
    url = origin.url + EVALUATE_PATH.format(slug=SLUG)
    peers = host.federation.peers
    public = (await host.live.view_of(record)).latest.oprf_key
    for size in (MAX_EVALUATION_BATCH, 1):
        prepared = prepare(record.petition_id, size)
        answers: dict[int, bytes] = {}

        async def post(i: int, prepared: Prepared = prepared,
                       answers: dict[int, bytes] = answers) -> int:
            k = i % DISTINCT_BATCHES
            answers[k] = (await peers.post(url, prepared.bodies[k], "application/json")).body
            return len(prepared.blinded[k])

        for workers in (1, 2):
            reset_limits(origin)
            if size == 1:
                rate = await throughput(post, workers, requests=sizes.single_requests)
            else:
                rate = await throughput(post, workers, seconds=sizes.batched_seconds)
            result.served[size, workers] = rate
        result.body_sizes[size] = (len(prepared.bodies[0]), len(answers[0]))
        for k, body in answers.items():  # every distinct answer must verify
            doc = json.loads(body)
            voprf.finalize(prepared.inputs[k], prepared.blinds[k],
                           [acts.unb64(e, "evaluated") for e in doc["evaluated"]],
                           prepared.blinded[k], acts.unb64(doc["proof"], "proof"), public)
            result.verified += 1


def reset_limits(origin: BenchNode) -> None:
    """Forget the origin's per-host evaluation limits (its SQLite storage counts them in
    memory): each measurement starts from a fresh hour."""
    storage = origin.live.storage
    assert isinstance(storage, SQLiteStorage)
    storage._limiters.clear()


async def round_trips(result: HttpResult, sizes: Sizes, origin: BenchNode, host: BenchNode,
                      record: PetitionRecord, signatures: list[SignatureRecord],
                      stored: dict[int, bytes | None]) -> None:
    """The host's own ``_nullifiers_for`` on its stored signatures (private: benchmark use)."""
    federation = host.federation
    got = dict(await federation._nullifiers_for(record, signatures))
    if got != stored:
        raise RuntimeError("_nullifiers_for disagrees with the stored nullifiers")

    async def batched(i: int) -> int:
        return len(await federation._nullifiers_for(record, signatures))

    async def single(i: int) -> int:
        return len(await federation._nullifiers_for(record, [signatures[i % len(signatures)]]))

    reset_limits(origin)
    result.round_trip[MAX_EVALUATION_BATCH] = await throughput(
        batched, 1, seconds=sizes.batched_seconds)
    reset_limits(origin)
    result.round_trip[1] = await throughput(single, 1, requests=sizes.single_requests)


async def baselines(result: HttpResult, sizes: Sizes, host: BenchNode, echo: Echo) -> None:
    """Unsigned POSTs of the same body sizes to the echo handler, by the host's Fetcher."""
    fetcher = host.federation.peers.fetcher
    headers = {"Content-Type": "application/json"}
    for size in (MAX_EVALUATION_BATCH, 1):
        request, answer = result.body_sizes[size]
        body = _json({"blinded": ["A" * (request - 16)]})  # {"blinded":[""]}: 16 bytes
        echo.answer = _json({"evaluated": ["A" * (answer - 18)]})  # {"evaluated":[""]}
        assert (len(body), len(echo.answer)) == (request, answer)

        async def post(i: int, body: bytes = body) -> int:
            await fetcher.post(echo.url, body, headers)
            return 1

        for workers in (1, 2):
            if size == 1:
                rate = await throughput(post, workers, requests=sizes.single_requests)
            else:
                rate = await throughput(post, workers, seconds=sizes.batched_seconds)
            result.baseline[size, workers] = rate


def print_http(r: HttpResult) -> None:
    def row(label: str, text: str) -> None:
        print(f"  {label:<38}{text}")

    print(f"  http, two nodes in this process on loopback (setup {r.setup:.1f} s; "
          f"{r.verified} distinct answers' proofs verified):")
    for (size, workers), rate in r.served.items():
        base = r.baseline[size, workers]
        request, answer = r.body_sizes[size]
        each = f"   {rate.ms_per_request:.2f} ms a request" if workers == 1 else ""
        row(f"origin serves, batch {size}, {workers} at a time",
            f"{rate.per_second:9,.0f} evaluations/s   {rate.requests_per_second:7,.1f} req/s"
            + each)
        row("  echo, same bodies (baseline)",
            f"{base.requests_per_second:9,.0f} req/s   ({request:,} B out, {answer:,} B back)"
            f"   ratio {rate.requests_per_second / base.requests_per_second:5.3f}")
    for size, rate in r.round_trip.items():
        row(f"host round trip, batch {size}",
            f"{rate.per_second:9,.0f} nullifiers/s   {rate.ms_per_request:6.2f} ms a batch")
    best = r.served[MAX_EVALUATION_BATCH, 1].per_second
    row("target, batched, one host", f"{TARGET:9,.0f} evaluations/s: "
                                     f"{'met' if best >= TARGET else 'NOT met'} "
                                     f"({best / TARGET:.2f}x)")
    for label, values in (("host: confirm -> nullifier stored", r.host_latency),
                          ("origin: confirm -> nullifier stored", r.origin_latency)):
        row(label, f"{1000 * statistics.median(values):7.1f} ms median   "
                   f"max {1000 * max(values):6.1f} ms   ({len(values)} signatures)")
    added = statistics.median(r.host_latency) - statistics.median(r.origin_latency)
    row("added latency per signature", f"{1000 * added:7.1f} ms (host median - origin median)")


# --------------------------------------------------------------------------- entry points


def bench_nullifiers(full: bool, parts: Sequence[str] = ("core", "http")) -> dict[str, Any]:
    sizes = FULL if full else REDUCED
    print("nullifiers: blind VOPRF evaluations at the origin (RFC 9497 ristretto255-SHA512)")
    out: dict[str, Any] = {}
    if "core" in parts:
        out["core"] = bench_core(sizes.core_seconds)
        print_core(out["core"])
    if "http" in parts:
        out["http"] = asyncio.run(bench_http_async(sizes))
        print_http(out["http"])
    if "core" in out and "http" in out:
        served = out["http"].served[MAX_EVALUATION_BATCH, 1].per_second
        alone = out["core"].evaluate[MAX_EVALUATION_BATCH]
        print(f"  {'ratio served (256, 1 at a time) / alone':<38}{served / alone:9.3f}   "
              f"to bare mults {served / out['core'].mults:.3f}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the sizes docs/performance.md uses")
    parser.add_argument("part", nargs="?", choices=("core", "http"),
                        help="run only this part (default both)")
    args = parser.parse_args()
    bench_nullifiers(args.full, (args.part,) if args.part else ("core", "http"))


if __name__ == "__main__":
    main()
