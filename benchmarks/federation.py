"""Federation benchmarks: checkpoint propagation to followers, and verifying live nodes.

Both run real nodes in this process, as ``tests/federation/nodes.py`` does:
``init_node``, the config edited for speed (sequencer period 0.1 s, federated
counts refreshed every 0.5 s, loopback peers allowed, any node admitted as a
host), ``build_node``, ``make_app`` served by an ``AppRunner`` on
``127.0.0.1:<port>``, which is also the node's name. All traffic is loopback.

propagation
    One node with a petition (one host, so the witness quorum is 0 and a new
    checkpoint is served right after its batch), and F followers: each a small
    aiohttp server on its own port with its own Ed25519 key, serving a real
    actor document, that sends a signed Follow to the node's inbox and verifies
    the RFC 9421 signature of everything the node POSTs to its inbox
    (``Peers.authenticate``) before parsing it (``parse_activity``) and noting
    when an ``Update`` of a ``fedpetition:Checkpoint`` arrived and its size.
    The followers run in a child process (``--in-process``: in the node's event
    loop instead). Once every follower holds the node's current checkpoint, a
    signature is confirmed through the API, and the figure is the time from the
    confirmation's answer to the moment the last follower verified a checkpoint
    containing it. Instrumentation (wrapping the sequencer's ``on_commit`` and the
    deliverer's ``enqueue`` of this node instance, nothing in the library) splits
    it into: waiting for the sequencer (its period) and committing the batch;
    publishing (storing the served checkpoint); queueing one delivery per
    follower; and delivering. ``--hosts 3`` co-hosts the petition on three nodes
    (quorum 1): publishing then waits for a cosignature.
    Baseline, same run: the same activity body POSTed with plain aiohttp from one
    warm ClientSession to the F followers at once (no signing, no verification;
    the follower reads and JSON-decodes it): the bare cost of the fan-out.

federated-verify
    Three nodes co-host one petition (origin + two hosts through ``POST
    /api/hosting``, quorum 1). Each log is then filled with N sign entries
    *at the storage layer*: built as ``fedpetition/simulate.py`` builds them,
    appended by a ``LogAppender`` over the node's log state and committed with
    ``storage.commit_batch`` in batches of the sequencer's ``max_batch``,
    exactly as ``Sequencer._sequence_petition`` does, then handed to the
    federation (``_committed``) to be cosigned and published. The HTTP signing
    flow has its own benchmark (``node``); filling 300,000 signatures through
    it would take a quarter of an hour at the rate that benchmark measures.
    About 10 % of the signers sign on two nodes (the same nullifier in two
    logs). Once every log is published with its
    cosignature and every node's federated count agrees with the expected total,
    ``fedpetition verify <petition URL>`` (live), ``fedpetition bundle URL --out F``
    and ``fedpetition verify F`` run as child processes, so that the verifier does
    not share the nodes' interpreter (GIL); each must report the expected total.
    Baselines, same run: ``fedpetition verify F`` offline (2 workers, and
    ``--workers 1`` like the live verifier), and the bare RFC 9162 root loop of
    ``benchmarks/run.py`` over the same bundle.
    These nodes refresh their federated counts every 30 s (the default), not
    every 0.5 s as the test harness does: at 0.5 s, three nodes recomputing
    counts of 300,000 signatures from scratch keep this one process busy and the
    measurement would be of that (``--refresh 0.5`` shows it; docs/performance.md).
    The timing starts only once the nodes are idle: no publishing, count refresh
    or delivery left.

    python -m benchmarks.federation propagation [--full] [--followers F] [--runs R]
                                                [--hosts 1|3] [--period S] [--in-process]
    python -m benchmarks.federation verify [--full] [--signatures N] [--refresh S] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from fedpetition.core.entries import SignEntry, coarse_time
from fedpetition.core.errors import FedPetitionError
from fedpetition.core.log import LogAppender
from fedpetition.core.notes import Signer
from fedpetition.federation import activities as acts
from fedpetition.federation.documents import ACTIVITY_JSON, actor_document
from fedpetition.federation.fetch import Fetcher
from fedpetition.federation.peers import Peers
from fedpetition.node.app import make_app
from fedpetition.node.config import load_config
from fedpetition.node.federation import Federation
from fedpetition.node.mail import MemoryMailer
from fedpetition.node.sequencer import PetitionLog, encode_state
from fedpetition.node.server import build_node, init_node
from fedpetition.node.service import Node
from fedpetition.node.storage import LogRecord
from fedpetition.simulate import REGIONS

ROOT = Path(__file__).resolve().parents[1]
SLUG = "clean-air"
PASSWORD = "benchmark password"
TARGET_PROPAGATION = 2.0  # seconds for a new checkpoint to reach 50 followers
# As tests/federation/nodes.py: faster than the defaults, loopback peers allowed.
FAST = {
    "# dev_allow_loopback = false": "dev_allow_loopback = true",
    "# period_seconds = 1.0": "period_seconds = 0.1",
    "# refresh_seconds = 30.0": "refresh_seconds = 0.5",
}
# The federated-verify nodes refresh their federated counts at the default pace:
# at the harness's 0.5 s, recomputing three counts of 300,000 signatures twice a
# second saturates the one process that runs the three nodes (docs/performance.md).
DEFAULT_REFRESH = 30.0
WAIT = 120.0  # seconds any one waiting step may take before the benchmark gives up


# --------------------------------------------------------------------------- helpers


def listening_socket() -> socket.socket:
    """A socket bound to a free loopback port, held until a server takes it over.

    Binding first and serving that very socket (``web.SockSite``) leaves no window
    in which another process could take the port, as there is between probing a
    free port and binding it again.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def wait_for(what: str, check: Callable[[], Awaitable[bool]],
                   timeout: float = WAIT) -> float:
    """Poll ``check`` until it holds; return the seconds waited, or fail naming ``what``."""
    began = time.monotonic()
    while not await check():
        if time.monotonic() - began > timeout:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - began


@dataclass
class BenchNode:
    """A real node served on a loopback port (as tests/federation/nodes.py runs them)."""

    folder: Path
    sock: socket.socket
    mail: MemoryMailer = field(default_factory=MemoryMailer)
    token: str = ""
    node: Node | None = None
    runner: web.AppRunner | None = None
    session: aiohttp.ClientSession | None = None

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    @property
    def name(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.name}"

    @property
    def live(self) -> Node:
        assert self.node is not None
        return self.node

    @property
    def federation(self) -> Federation:
        federation = self.live.federation
        assert isinstance(federation, Federation)
        return federation

    async def start(self) -> None:
        node = await build_node(load_config(self.folder / "fedpetition.toml"))
        node.mailer = self.mail
        self.node = node
        self.runner = web.AppRunner(make_app(node), access_log=None)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()
        self.token = await node.create_organiser("bench", PASSWORD)
        self.session = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
        if self.runner is not None:
            await self.runner.cleanup()
        self.sock.close()
        self.runner = self.node = self.session = None

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        assert self.session is not None
        async with self.session.request(method, self.url + path, **kwargs) as response:
            body = await response.read()
            try:
                return response.status, json.loads(body)
            except ValueError:
                return response.status, body

    async def create_petition(self) -> str:
        status, body = await self.request(
            "POST", "/api/petitions", headers={"Authorization": f"Bearer {self.token}"}, json={
                "slug": SLUG, "languages": ["fr", "en"],
                "title": {"fr": "Pour un air propre", "en": "For clean air"},
                "text": {"fr": "Nous demandons de l'air propre.", "en": "We ask for clean air."},
                "addressee": "Ministère", "deadline": int(time.time()) + 30 * 86400,
                "thresholds": [10]})
        if status != 201:
            raise RuntimeError(f"creating the petition: {status} {body!r}")
        return f"{self.url}/petitions/{SLUG}"

    async def host(self, petition_url: str) -> None:
        status, body = await self.request(
            "POST", "/api/hosting", headers={"Authorization": f"Bearer {self.token}"},
            json={"url": petition_url})
        if status != 202:
            raise RuntimeError(f"hosting {petition_url}: {status} {body!r}")

    async def sign(self, email: str) -> str:
        """POST a signature; the confirmation token mailed back."""
        status, body = await self.request(
            "POST", f"/api/petitions/{SLUG}/signatures",
            json={"name": "A Signer", "email": email, "region": "FR-IDF"})
        if status != 202:
            raise RuntimeError(f"signing: {status} {body!r}")
        return self.mail.last_token(email)

    async def confirm(self, token: str) -> None:
        status, body = await self.request("POST", f"/api/signatures/{token}/confirm")
        if status != 200:
            raise RuntimeError(f"confirming: {status} {body!r}")

    async def log(self) -> PetitionLog:
        record = await self.live.storage.petition_by_slug(SLUG)
        assert record is not None
        return await self.live.sequencer.load(record)


async def make_nodes(folder: Path, count: int, *, refresh: float = 0.5,
                     period: float = 0.1,
                     adjust: Callable[[str], str] | None = None) -> list[BenchNode]:
    """``count`` nodes configured as the test harness does, but for the sequencer's
    ``period`` and the federated counts' ``refresh`` (both in seconds); ``adjust``
    edits each config text further."""
    edits = {**FAST, "# accept_hosts = []": 'accept_hosts = ["*"]',
             "# refresh_seconds = 30.0": f"refresh_seconds = {refresh}",
             "# period_seconds = 1.0": f"period_seconds = {period}"}
    nodes = []
    for i in range(count):
        sock = listening_socket()
        port = sock.getsockname()[1]
        name = f"127.0.0.1:{port}"
        config = await init_node(folder / f"node{i}", name, f"http://{name}", listen_port=port)
        text = config.read_text()
        for old, new in edits.items():
            if old not in text:
                raise RuntimeError(f"the default config has no line {old!r}")
            text = text.replace(old, new)
        if adjust is not None:
            text = adjust(text)
        config.write_text(text)
        running = BenchNode(folder / f"node{i}", sock)
        await running.start()
        nodes.append(running)
    return nodes


async def co_host(nodes: list[BenchNode]) -> str:
    """A petition on the first node, hosted by the others; its URL once every roster agrees."""
    origin, *hosts = nodes
    url = await origin.create_petition()
    for host in hosts:
        await host.host(url)

    async def everyone_hosts() -> bool:
        for running in nodes:
            status, body = await running.request("GET", f"/api/petitions/{SLUG}/federated")
            if status != 200 or len(body["hosts"]) != len(nodes):
                return False
        return True

    await wait_for(f"every node to list the {len(nodes)} hosts", everyone_hosts)
    return url


# The federation's background tasks that run for as long as the node does.
PERMANENT_TASKS = frozenset({"deliveries", "federated counts", "nullifiers"})


async def quiet(running: BenchNode) -> bool:
    """Whether the node's federation has nothing left to do: no publishing, no count
    being refreshed, no delivery queued. Private attributes: benchmark instrumentation."""
    federation = running.federation
    return (all(task.get_name() in PERMANENT_TASKS for task in federation._tasks)
            and all(task.done() for task in federation._publishers.values())
            and await running.live.storage.pending_deliveries() == 0)


def note_size(note: str | bytes) -> int:
    """A checkpoint note's size: its second line."""
    text = note.decode() if isinstance(note, bytes) else note
    return int(text.split("\n", 2)[1])


# --------------------------------------------------------------------------- followers


Report = Callable[[str, int, int, float], None]  # (kind, follower, size, monotonic time)


class Follower:
    """A minimal honest follower: a real actor, a signed Follow, a verifying inbox."""

    def __init__(self, index: int, sock: socket.socket, fetcher: Fetcher,
                 report: Report) -> None:
        self.index = index
        self.sock = sock
        self.port = int(sock.getsockname()[1])
        self.name = f"127.0.0.1:{self.port}"
        self.base = f"http://{self.name}"
        self.signer = Signer.generate(self.name, os.urandom(32))
        self.peers = Peers(fetcher, self.signer, self.base)
        self.report = report
        self.actor = actor_document(self.base, self.name, self.signer.public_key,
                                    str(self.signer.verifier_key()))
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/actor", self.serve_actor)
        app.router.add_post("/inbox", self.inbox)
        app.router.add_post("/plain", self.plain)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        self.sock.close()

    async def serve_actor(self, request: web.Request) -> web.Response:
        return web.Response(text=json.dumps(self.actor), content_type=ACTIVITY_JSON)

    async def follow(self, node_inbox: str, petition_url: str) -> None:
        activity = acts.activity("Follow", acts.new_activity_id(self.base),
                                 self.peers.actor_id, petition_url)
        await self.peers.post(node_inbox, json.dumps(activity).encode())

    async def inbox(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            actor = await self.peers.authenticate(request.method, f"{self.base}/inbox",
                                                  request.headers, body)
            activity = acts.parse_activity(json.loads(body), actor.id)
            obj = activity.object
            if activity.type == "Update" and obj is not None \
                    and obj.get("type") == acts.CHECKPOINT_TYPE:
                checkpoint = acts.parse_checkpoint_object(obj)
                self.report("checkpoint", self.index, note_size(checkpoint.note),
                            time.monotonic())
        except (FedPetitionError, ValueError) as e:
            self.report(f"error: {type(e).__name__}: {e}"[:300], self.index, 0, time.monotonic())
            return web.json_response({"error": str(e)}, status=401)
        return web.json_response({"accepted": True}, status=202)

    async def plain(self, request: web.Request) -> web.Response:
        """The baseline's receiver: read and decode the body, nothing checked."""
        json.loads(await request.read())
        self.report("plain", self.index, 0, time.monotonic())
        return web.json_response({"accepted": True}, status=202)


class FollowerFarm:
    """``count`` followers on one event loop, sharing one outbound HTTP client."""

    def __init__(self, count: int, report: Report) -> None:
        self.fetcher = Fetcher(allow_loopback=True, user_agent="fedpetition-bench-follower")
        self.followers = [Follower(i, listening_socket(), self.fetcher, report)
                          for i in range(count)]

    @property
    def ports(self) -> list[int]:
        return [f.port for f in self.followers]

    async def start(self) -> None:
        for follower in self.followers:
            await follower.start()

    async def follow(self, node_inbox: str, petition_url: str) -> None:
        await asyncio.gather(*(f.follow(node_inbox, petition_url) for f in self.followers))

    async def stop(self) -> None:
        for follower in self.followers:
            await follower.stop()
        await self.fetcher.close()


def _farm_child(count: int, node_inbox: str, petition_url: str) -> None:
    """``--follower-farm``: the followers in a child process, reporting on stdout.

    Prints ``{"ports": [...]}`` once serving, ``{"followed": true}`` once every
    Follow was accepted, then one line per arrival; exits when stdin closes.
    """

    def report(kind: str, index: int, size: int, at: float) -> None:
        print(json.dumps({"kind": kind, "i": index, "size": size, "t": at}), flush=True)

    async def main() -> None:
        farm = FollowerFarm(count, report)
        await farm.start()
        print(json.dumps({"ports": farm.ports}), flush=True)
        try:
            await farm.follow(node_inbox, petition_url)
            print(json.dumps({"followed": True}), flush=True)
            await asyncio.to_thread(sys.stdin.read)  # until the parent closes our stdin
        finally:
            await farm.stop()

    asyncio.run(main())


class Arrivals:
    """What the followers reported: checkpoint sizes and times, plain POSTs, errors."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.checkpoints: list[list[tuple[int, float]]] = [[] for _ in range(count)]
        self.plain: list[float] = []
        self.errors: list[str] = []
        self.changed = asyncio.Event()

    def add(self, kind: str, index: int, size: int, at: float) -> None:
        if kind == "checkpoint":
            self.checkpoints[index].append((size, at))
        elif kind == "plain":
            self.plain.append(at)
        else:
            self.errors.append(f"follower {index}: {kind}")
        self.changed.set()

    def reached(self, size: int) -> list[float | None]:
        """Per follower, when it first verified a checkpoint of at least ``size`` entries."""
        return [min((t for s, t in got if s >= size), default=None) for got in self.checkpoints]

    async def wait(self, what: str, check: Callable[[], bool], timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.changed.clear()
            if self.errors:
                raise RuntimeError(f"a follower refused a delivery: {self.errors[0]}")
            if check():
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)


class Farm:
    """The followers, in a child process or in this event loop, as seen from here."""

    def __init__(self, count: int, in_process: bool) -> None:
        self.count = count
        self.in_process = in_process
        self.arrivals = Arrivals(count)
        self.ports: list[int] = []
        self._local: FollowerFarm | None = None
        self._child: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self, node_inbox: str, petition_url: str) -> None:
        if self.in_process:
            self._local = FollowerFarm(self.count, self.arrivals.add)
            await self._local.start()
            self.ports = self._local.ports
            await self._local.follow(node_inbox, petition_url)
            return
        self._child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.federation", "--follower-farm", str(self.count),
            node_inbox, petition_url, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, cwd=ROOT, limit=1 << 20)
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(started))
        await asyncio.wait_for(asyncio.shield(started), WAIT)

    async def _read(self, started: asyncio.Future[None]) -> None:
        assert self._child is not None and self._child.stdout is not None
        async for line in self._child.stdout:
            message = json.loads(line)
            if "ports" in message:
                self.ports = message["ports"]
            elif "followed" in message:
                started.set_result(None)
            else:
                self.arrivals.add(message["kind"], message["i"], message["size"], message["t"])
        if not started.done():
            started.set_exception(RuntimeError("the follower process exited"))

    async def stop(self) -> None:
        if self._local is not None:
            await self._local.stop()
        if self._child is not None:
            assert self._child.stdin is not None
            self._child.stdin.close()
            try:
                await asyncio.wait_for(self._child.wait(), 15)
            except TimeoutError:
                self._child.kill()
                await self._child.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


# --------------------------------------------------------------------------- propagation


@dataclass
class Run:
    """One measured confirmation, in seconds after its confirmation's answer."""

    commit: float  # the sequencer committed the batch holding it
    first_enqueue: float  # the first follower's delivery was queued (checkpoint published)
    last_enqueue: float  # the last one was
    first: float  # the first follower verified a checkpoint containing it
    last: float  # the last follower did


@dataclass
class PropagationResult:
    followers: int
    hosts: int
    quorum: int
    in_process: bool
    period: float
    runs: list[Run]
    baseline: list[float]
    setup: float


class Probe:
    """Timestamps from the origin node: batch committed, checkpoint deliveries queued."""

    def __init__(self, running: BenchNode) -> None:
        self.commits: list[tuple[int, float]] = []  # (checkpoint size, time)
        self.enqueued: list[tuple[float, bytes]] = []  # (time, body)
        node = running.live
        on_commit = node.sequencer.on_commit
        assert on_commit is not None
        deliverer = running.federation.deliverer
        enqueue_many = deliverer.enqueue_many

        async def committed(current: PetitionLog) -> None:
            self.commits.append((current.checkpoint.size, time.monotonic()))
            await on_commit(current)

        async def enqueued(items: Sequence[tuple[str, str, bytes]]) -> list[int]:
            # A fan-out is queued in one transaction: every item gets the time it is durable.
            ids = await enqueue_many(items)
            done = time.monotonic()
            self.enqueued.extend((done, body) for _, _, body in items)
            return ids

        node.sequencer.on_commit = committed
        deliverer.enqueue_many = enqueued  # type: ignore[method-assign]

    def checkpoint_bodies(self, size: int, inboxes: int) -> list[tuple[float, bytes]]:
        """The first ``inboxes`` checkpoint Updates of at least ``size`` entries queued."""
        found = []
        for at, body in self.enqueued:
            if b'"fedpetition:Checkpoint"' in body:
                obj = json.loads(body)["object"]
                if note_size(obj["content"]) >= size:
                    found.append((at, body))
        return found[:inboxes]


async def bench_propagation_async(followers: int, runs: int, hosts: int = 1,
                                  in_process: bool = False, period: float = 0.1
                                  ) -> PropagationResult:
    folder = Path(tempfile.mkdtemp(prefix="bench-propagation-"))
    nodes: list[BenchNode] = []
    farm = Farm(followers, in_process)
    try:
        began = time.monotonic()
        nodes = await make_nodes(folder, hosts, period=period)
        origin = nodes[0]
        url = await co_host(nodes) if hosts > 1 else await origin.create_petition()
        record = await origin.live.storage.petition_by_slug(SLUG)
        assert record is not None
        quorum = origin.federation.roster(record).policy.quorum
        probe = Probe(origin)
        await farm.start(f"{origin.url}/inbox", url)
        arrivals = farm.arrivals
        current = await origin.log()
        await arrivals.wait(f"the {followers} followers to get the first checkpoint",
                            lambda: None not in arrivals.reached(current.checkpoint.size))
        setup = time.monotonic() - began
        measured: list[Run] = []
        inboxes = followers + hosts - 1  # the other hosts follow the origin's petition too
        for attempt in range(runs + 1):  # the first one warms up, and is not counted
            size = current.checkpoint.size + 1
            token = await origin.sign(f"signer{attempt}@example.org")
            # Confirm at any moment of the sequencer's period, as a signer would.
            await asyncio.sleep(random.uniform(0.0, period))
            await origin.confirm(token)
            confirmed = time.monotonic()
            await arrivals.wait(f"checkpoint {size} at every follower",
                                lambda size=size: None not in arrivals.reached(size))
            times = [t for t in arrivals.reached(size) if t is not None]
            commit = min(t for s, t in probe.commits if s >= size)
            queued = [at for at, _ in probe.checkpoint_bodies(size, inboxes)]
            if attempt:
                measured.append(Run(commit - confirmed, queued[0] - confirmed,
                                    queued[-1] - confirmed, min(times) - confirmed,
                                    max(times) - confirmed))
            await asyncio.sleep(0.3)  # let the node record the deliveries as done
        body = probe.checkpoint_bodies(current.checkpoint.size, 1)[0][1]
        baseline = await plain_fan_out(farm, body, runs)
        return PropagationResult(followers, hosts, quorum, in_process, period, measured,
                                 baseline, setup)
    finally:
        await farm.stop()
        for running in nodes:
            await running.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def plain_fan_out(farm: Farm, body: bytes, runs: int) -> list[float]:
    """Baseline: the body POSTed by plain aiohttp to every follower at once, ``runs`` times.

    Each figure runs from just before the POSTs to the last follower's arrival,
    as the propagation's figure runs to the last follower's verification.
    """
    arrivals = farm.arrivals
    urls = [f"http://127.0.0.1:{port}/plain" for port in farm.ports]
    headers = {"Content-Type": ACTIVITY_JSON}
    results = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def post(url: str) -> None:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 202:
                    raise RuntimeError(f"{url} answered {response.status}")

        for attempt in range(runs + 1):  # the first one opens the connections
            arrivals.plain.clear()
            began = time.monotonic()
            await asyncio.gather(*(post(url) for url in urls))
            await arrivals.wait("the plain POSTs", lambda: len(arrivals.plain) >= len(urls))
            if attempt:
                results.append(max(arrivals.plain) - began)
            await asyncio.sleep(0.1)
    return results


def print_propagation(result: PropagationResult) -> None:
    runs, period, n = result.runs, result.period, result.followers

    def row(label: str, values: list[float], note: str = "") -> None:
        print(f"  {label:<43}{median(values):6.3f} s   max {max(values):6.3f} s{note}")

    where = "in the node's event loop" if result.in_process else "in a child process"
    publish = "publish, cosigned" if result.quorum else "publish"
    print(f"  followers: {n} aiohttp servers {where}, each verifying RFC 9421 signatures")
    print(f"  hosts {result.hosts}, witness quorum {result.quorum}, sequencer period "
          f"{period:g} s; medians of {len(runs)} runs (setup {result.setup:.1f} s)")
    row(f"confirm -> {n}th follower", [r.last for r in runs],
        f"   (target {TARGET_PROPAGATION:.0f} s)")
    row("confirm -> first follower", [r.first for r in runs])
    row("  sequencer wait + commit", [r.commit for r in runs])
    row(f"  {publish} (commit -> 1st queued)", [r.first_enqueue - r.commit for r in runs])
    row(f"  queue {n + result.hosts - 1} deliveries", [r.last_enqueue - r.first_enqueue
                                                     for r in runs])
    row("  deliver (last queued -> last arrival)", [r.last - r.last_enqueue for r in runs])
    publish_deliver = [r.last - r.commit for r in runs]
    row("  publish + delivery (commit -> last)", publish_deliver)
    row(f"plain POST to {n} followers (baseline)", result.baseline)
    base = median(result.baseline)
    print(f"  ratio publish+delivery / baseline          {median(publish_deliver) / base:6.1f}")
    total = median([r.last for r in runs])
    print(f"  ratio confirm->{n}th / baseline             {total / base:6.1f}")


def bench_propagation(followers: int, runs: int, hosts: int = 1, in_process: bool = False,
                      period: float = 0.1) -> PropagationResult:
    print(f"propagation: a new checkpoint to {followers} following nodes, {hosts} host(s)")
    result = asyncio.run(bench_propagation_async(followers, runs, hosts, in_process, period))
    print_propagation(result)
    return result


# --------------------------------------------------------------------------- verify live


@dataclass
class Child:
    """A finished child process: wall time, its own peak RSS, exit code, output."""

    seconds: float
    rss_mb: float
    code: int
    out: str
    err: str


def status_mb(pid: int, field: str) -> float | None:
    """A figure of a live process's /proc status (VmHWM: its peak resident set; VmRSS:
    its resident set now), in MB; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _run_child(args: list[str]) -> Child:
    """Run ``args``, time it, and follow its own peak RSS.

    Not ru_maxrss: a child forked (or vforked) from this process inherits this
    process's peak at exec, and this one holds three nodes. VmHWM belongs to the
    child's own address space; it is read every 10 ms while the child runs, so
    a peak in its last 10 ms could be missed.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        began = time.perf_counter()
        process = subprocess.Popen(args, stdout=out, stderr=err, cwd=ROOT)
        peak = 0.0
        while True:
            pid, status = os.waitpid(process.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, status_mb(process.pid, "VmHWM") or 0.0)
            time.sleep(0.01)
        seconds = time.perf_counter() - began
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Child(seconds, peak, process.returncode,
                     out.read().decode(errors="replace"), err.read().decode(errors="replace"))


async def cli(*args: str) -> Child:
    """``fedpetition ARGS`` in a child process, without blocking the nodes' event loop."""
    return await asyncio.to_thread(
        _run_child, [sys.executable, "-m", "fedpetition.cli", *args])


async def verify_total(*args: str) -> tuple[Child, int]:
    child = await cli("verify", "--json", *args)
    try:
        report = json.loads(child.out)
    except ValueError:
        raise RuntimeError(f"verify {args}: no report: {child.err.strip()[-500:]}") from None
    if child.code != 0 or not report["ok"]:
        failed = [s for s in report["steps"] if s["status"] == "fail"]
        raise RuntimeError(f"verify {args} failed: {failed[:1]}")
    return child, int(report["tally"]["total"])


async def fill(nodes: list[BenchNode], per_node: int, seed: int = 2016) -> tuple[int, float]:
    """Fill each node's log with ``per_node`` sign entries at the storage layer.

    Node i signs ``per_node - k`` signers of its own and ``k`` of node i+1's
    (k = per_node // 11, so that about 10 % of all signers sign on two nodes).
    Returns the expected federated total and the seconds spent.
    """
    began = time.monotonic()
    rng = random.Random(seed)
    borrowed = per_node // 11
    own = [[rng.randbytes(32) for _ in range(per_node - borrowed)] for _ in nodes]
    plans = []
    for i, running in enumerate(nodes):
        nullifiers = own[i] + own[(i + 1) % len(nodes)][:borrowed]
        rng.shuffle(nullifiers)
        plans.append((running, await running.log(), nullifiers))
    batch = max(1, nodes[0].live.config.sequencer.max_batch)
    for start in range(0, per_node, batch):
        for running, current, nullifiers in plans:
            await append_batch(running.live, current, nullifiers[start:start + batch], rng)
    # The injected signers stand for nullifiers the hosts got from the origin: record the
    # evaluations the origin would have served them, or the verifier rightly flags the
    # hosts for entries beyond their evaluations (spec §4.4).
    origin = nodes[0].live
    record = await origin.storage.petition_by_id(plans[0][1].petition)
    assert record is not None
    for running, _, nullifiers in plans[1:]:
        await origin.storage.add_evaluations(record.id, running.live.name, len(nullifiers))
    return len(nodes) * (per_node - borrowed), time.monotonic() - began


async def append_batch(node: Node, current: PetitionLog, nullifiers: list[bytes],
                       rng: random.Random) -> None:
    """One batch, as Sequencer._sequence_petition commits one, but from made-up signers."""
    digest = current.digests[1]
    entry_time = max(coarse_time(int(time.time())), current.last_time)
    built = [SignEntry(digest, nullifier, rng.randbytes(32), entry_time,
                       region=None if rng.random() < 0.1 else rng.choice(REGIONS))
             for nullifier in nullifiers]
    appender = LogAppender(current.origin, current.state)
    start = appender.size
    files = appender.append([e.encode() for e in built]) + appender.partial_files()
    note = appender.signed_checkpoint(node.signer).encode()
    record = LogRecord(current.petition, appender.size, encode_state(appender.state()), note,
                       entry_time)
    await node.storage.commit_batch(current.petition, start, [], record, files, [], [])
    for offset, entry in enumerate(built):
        current.stats.add(start + offset, entry)
    current.state = appender.state()
    current.last_time = entry_time
    current.checkpoint = appender.checkpoint()
    current.note = note
    federation = node.federation
    assert isinstance(federation, Federation)
    await federation._committed(current)


@dataclass
class VerifyResult:
    per_node: int
    expected: int
    filled: float
    settled: float
    live: Child
    bundle: Child
    offline: Child
    serial: Child
    bare: float
    entries: int
    bundle_mb: float
    files: int
    refresh: float  # one refresh_count of the origin's federated count, nothing new


async def bench_verify_async(per_node: int, refresh: float = DEFAULT_REFRESH,
                             keep: bool = False) -> VerifyResult:
    folder = Path(tempfile.mkdtemp(prefix="bench-fedverify-"))
    nodes: list[BenchNode] = []
    try:
        nodes = await make_nodes(folder, 3, refresh=refresh)
        url = await co_host(nodes)
        expected, filled = await fill(nodes, per_node)

        async def settled() -> bool:
            for running in nodes:
                current = await running.log()
                if note_size(current.published) != per_node:
                    return False
                summary = running.federation.summary(await running.live.petition(SLUG))
                if summary["total"] != expected or any(h.get("problem") or h.get("size")
                                                       != per_node for h in summary["hosts"]):
                    return False
            return all([await quiet(running) for running in nodes])

        settle = await wait_for("every log to be published, every node to count "
                                f"{expected:,} and to be done", settled, timeout=900)
        live, total = await verify_total(url)
        if total != expected:
            raise RuntimeError(f"live verify counted {total:,}, expected {expected:,}")
        path = folder / "bundle.zip"
        bundle = await cli("bundle", url, "--out", str(path))
        if bundle.code != 0:
            raise RuntimeError(f"bundle failed: {bundle.err.strip()[-500:]}")
        offline, total = await verify_total(str(path))
        serial, total_serial = await verify_total(str(path), "--workers", "1")
        if total != expected or total_serial != expected:
            raise RuntimeError(f"the bundle verifies with {total:,}, expected {expected:,}")
        # What one refresh of a node's federated count costs when no log has grown.
        record = await nodes[0].live.storage.petition_by_slug(SLUG)
        assert record is not None
        began = time.perf_counter()
        await nodes[0].federation.refresh_count(record.id)
        refresh_cost = time.perf_counter() - began
    finally:
        for running in nodes:
            await running.stop()
    try:
        from benchmarks.run import bare_root_seconds  # here: benchmarks.run imports us

        bare, entries = bare_root_seconds(path)
        with zipfile.ZipFile(path) as z:
            files = len(z.namelist())
        size = path.stat().st_size / 1e6
    finally:
        if keep:
            print(f"  (folder kept: {folder})")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return VerifyResult(per_node, expected, filled, settle, live, bundle, offline, serial, bare,
                        entries, size, files, refresh_cost)


def bench_federated_verify(per_node: int, refresh: float = DEFAULT_REFRESH,
                           keep: bool = False) -> VerifyResult:
    print(f"federated-verify: 3 live nodes x {per_node:,} signatures "
          f"(entries injected at the storage layer; nodes refresh every {refresh:g} s)")
    r = asyncio.run(bench_verify_async(per_node, refresh, keep))

    def row(label: str, text: str) -> None:
        print(f"  {label:<34}{text}")

    both = r.bundle.seconds + r.offline.seconds
    row("entries", f"{r.entries:,} in 3 logs, about 10 % of signers on two nodes "
                   f"({r.filled:.1f} s to fill)")
    row("expected federated total", f"{r.expected:,}: what all three verifications found")
    row("nodes published, counted, idle", f"{r.settled:.1f} s after the fill")
    row("one federated count refresh", f"{r.refresh:6.2f} s   (origin node, no log grew)")
    row("fedpetition verify <URL>", f"{r.live.seconds:6.2f} s   peak RSS {r.live.rss_mb:4.0f} MB"
                                    "   (live: one worker)")
    row("fedpetition bundle <URL>", f"{r.bundle.seconds:6.2f} s   ({r.files:,} files, "
                                    f"{r.bundle_mb:.1f} MB)")
    row("fedpetition verify F", f"{r.offline.seconds:6.2f} s   (baseline: offline, 2 workers)")
    row("bundle + verify F", f"{both:6.2f} s")
    row("fedpetition verify F --workers 1", f"{r.serial.seconds:6.2f} s   peak RSS "
                                            f"{r.serial.rss_mb:4.0f} MB   (baseline)")
    row("bare RFC 9162 roots (1 core)", f"{r.bare:6.2f} s   (baseline)")
    row("ratio live / verify F", f"{r.live.seconds / r.offline.seconds:6.2f}")
    row("ratio live / verify F --workers 1", f"{r.live.seconds / r.serial.seconds:6.2f}")
    row("ratio bundle+verify / verify F", f"{both / r.offline.seconds:6.2f}")
    row("ratio live / bare roots", f"{r.live.seconds / r.bare:6.2f}")
    return r


# --------------------------------------------------------------------------- command line


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--follower-farm":
        _farm_child(int(sys.argv[2]), sys.argv[3], sys.argv[4])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="benchmark", required=True)
    p = sub.add_parser("propagation", help="a new checkpoint to many followers")
    p.add_argument("--full", action="store_true", help="5 runs (default 3)")
    p.add_argument("--followers", type=int, default=50)
    p.add_argument("--runs", type=int)
    p.add_argument("--hosts", type=int, choices=(1, 3), default=1)
    p.add_argument("--period", type=float, default=0.1, metavar="S",
                   help="the sequencer's period_seconds (test harness 0.1, default 1.0)")
    p.add_argument("--in-process", action="store_true",
                   help="the followers in the node's event loop, not a child process")
    v = sub.add_parser("verify", help="verify 3 live nodes")
    v.add_argument("--full", action="store_true", help="100,000 signatures a node (10,000)")
    v.add_argument("--signatures", type=int, help="signatures per node")
    v.add_argument("--refresh", type=float, default=DEFAULT_REFRESH, metavar="S",
                   help="the nodes' refresh_seconds (the test harness uses 0.5)")
    v.add_argument("--keep", action="store_true", help="keep the nodes' folder and bundle")
    args = parser.parse_args()
    if args.benchmark == "propagation":
        runs = args.runs or (5 if args.full else 3)
        bench_propagation(args.followers, runs, args.hosts, args.in_process, args.period)
    else:
        bench_federated_verify(args.signatures or (100_000 if args.full else 10_000),
                               args.refresh, args.keep)


if __name__ == "__main__":
    main()
