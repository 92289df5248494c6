"""Load benchmark of a node: many signers through sign, mail and confirm, on loopback.

A real node (``fedpetition serve``, a child process) runs in a temporary folder
with its rate limits raised, since every simulated signer comes from 127.0.0.1,
and its mail sent by SMTP to a sink in this process (aiosmtpd's SMTP protocol
on this process's event loop rather than in a Controller thread, which would
contend with the client for the GIL), which hands each confirmation link to the
signer waiting for that recipient: no folder polling. Each signer does the
whole flow: POST the signature, receive the mail, POST the confirmation; a
200 "confirmed" answer means the signature is durable (committed with
synchronous=FULL) and queued for the log.

Figures: confirmed signatures per second over the run, p50 and p99 latency of
the whole flow and of the confirm call alone. At the end the benchmark waits
for the sequencer to count every confirmed signature, downloads the bundle and
runs ``fedpetition verify`` on it: the verified total must be the confirmed one.

Storage backends (``--postgres URL``): the same load on SQLite, then on
PostgreSQL with 1, 2 and 4 worker processes (``serve --workers N``), each node
in a fresh schema dropped afterwards; one table of figures for all of them.
The server CPU counts the node's processes and, on PostgreSQL, the database
server's (its processes' CPU over the run).

Baseline, in the same run: a bare aiohttp server (child process) with an echo
handler, driven by the same client code at the same concurrency for as many
requests as there are signers; the ratio is confirmed signatures/s divided by
echo requests/s. A signer costs two HTTP requests and one SMTP session, so the
ratio of a node doing nothing but answering would be about 0.5.

    python -m benchmarks.node_load [--full] [--signers N] [--concurrency N]
                                   [--seconds S] [--py-spy FILE [--idle] [--gil]] [--keep]
                                   [--postgres URL] [--workers 1,2,4]
                                   [--smtp-delay MS] [--mail-connections N]

``--py-spy FILE`` records the node process with py-spy (raw collapsed stacks,
one line per stack and its sample count) while the signers run.

``--smtp-delay MS`` makes the sink answer every SMTP command that late, as a
submission server that far away would; ``--mail-connections N`` sets how many
connections the node keeps to it. The sign call waits for its mail to be
handed over, so these bound the rate of signatures, not the node's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import email
import email.policy
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1000.0  # confirmed signatures per second, sustained for 60 s (issue 7)
FULL_SIGNERS = 66_000  # --full: 66 s at the target rate
FULL_SECONDS = 150.0
SLUG = "load-test"
PASSWORD = "benchmark password"
CONFIG_NAME = "fedpetition.toml"
REQUEST_TIMEOUT = 30.0
MAIL_TIMEOUT = 30.0
SEQUENCE_TIMEOUT = 120.0
HIGH_LIMIT = 1_000_000_000
# A confirmation link: /s/ and the 43 characters of secrets.token_urlsafe(32).
_LINK = re.compile(rb"/s/([A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])")
_TICK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _stat(pid: int | str) -> tuple[str, int, float] | None:
    """(command, parent pid, user + system CPU seconds) of a process (Linux /proc)."""
    try:
        head, tail = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)
    except OSError:
        return None
    fields = tail.split()
    return head.split("(", 1)[1], int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (the workers of ``serve --workers``)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(entry.name)
            if stat is not None and (int(entry.name) == pid or stat[1] == pid):
                total += stat[2]
    return total


def postgres_cpu_seconds() -> float:
    """CPU time of the database server's processes on this machine (0 if none)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(entry.name)
            if stat is not None and stat[0].startswith("postgres"):
                total += stat[2]
    return total


def set_setting(text: str, section: str, key: str, value: str) -> str:
    """Set ``key = value`` in ``[section]`` of a config ``fedpetition init`` wrote.

    Replaces the line that sets the key or shows its default (``# key = ...``),
    else adds the setting right after the section's header.
    """
    lines = text.splitlines()
    start = lines.index(f"[{section}]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    pattern = re.compile(rf"#?\s*{re.escape(key)}\s*=.*")
    for i in range(start + 1, end):
        if pattern.fullmatch(lines[i]):
            lines[i] = f"{key} = {value}"
            break
    else:
        lines.insert(start + 1, f"{key} = {value}")
    return "\n".join(lines) + "\n"


def run_cli(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "fedpetition.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if done.returncode != 0:
        sys.exit(f"node_load: fedpetition {args[0]} failed: {done.stderr.strip()}")
    return done.stdout


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def wait_until_up(
    session: aiohttp.ClientSession, url: str, process: subprocess.Popen[bytes], what: str
) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{what} did not answer {url} within 30 s")


# --------------------------------------------------------------------------- the mail sink


class MailSink:
    """aiosmtpd handler: the confirmation link of each mail, to the signer awaiting it."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[str]] = {}
        self.received = 0
        self.unmatched = 0

    def expect(self, address: str) -> asyncio.Future[str]:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.waiting[address] = future
        return future

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received += 1
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode()
        token = _token(content)
        for address in envelope.rcpt_tos:
            future = self.waiting.pop(address.lower(), None)
            if future is None or future.done():
                self.unmatched += 1
            elif token is None:
                future.set_exception(RuntimeError("no confirmation link in the mail"))
            else:
                future.set_result(token)
        return "250 OK"


def _token(message: bytes) -> str | None:
    """The link's token: read from the raw bytes when the body is not encoded."""
    found = _LINK.search(message)
    if found is None:  # quoted-printable or base64 body: decode it properly
        parsed = email.message_from_bytes(message, policy=email.policy.default)
        body = parsed.get_body(("plain",)) if isinstance(parsed, EmailMessage) else None
        text = body.get_content() if isinstance(body, EmailMessage) else ""
        found = _LINK.search(text.encode())
    return found.group(1).decode() if found else None


# --------------------------------------------------------------------------- the load


@dataclass
class Load:
    """What a run of one flow, ``total`` times over ``concurrency`` workers, measured."""

    started: int = 0
    completed: int = 0
    seconds: float = 0.0
    latency: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)

    def record(self, **seconds: float) -> None:
        for name, value in seconds.items():
            self.latency.setdefault(name, []).append(value)

    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    def ms(self, name: str, p: float) -> float:
        return percentile(self.latency.get(name, []), p) * 1000


class FlowError(Exception):
    """One flow failed; the message is the kind of failure (counted, not raised)."""


Flow = Callable[[int, aiohttp.ClientSession, Load], Awaitable[None]]


async def drive(flow: Flow, total: int, concurrency: int, seconds: float) -> Load:
    """Run ``flow`` ``total`` times, ``concurrency`` at a time, starting none after ``seconds``."""
    load = Load()
    deadline = time.perf_counter() + seconds
    next_index = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            nonlocal next_index
            while next_index < total and time.perf_counter() < deadline:
                index = next_index
                next_index += 1
                load.started += 1
                try:
                    await flow(index, session, load)
                except FlowError as e:
                    load.errors[str(e)] += 1
                except (aiohttp.ClientError, TimeoutError) as e:
                    load.errors[type(e).__name__] += 1
                else:
                    load.completed += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        load.seconds = time.perf_counter() - began
    return load


def echo_flow(base: str) -> Flow:
    async def flow(index: int, session: aiohttp.ClientSession, load: Load) -> None:
        began = time.perf_counter()
        async with session.post(f"{base}/echo", json=sign_body(index, "echo")) as response:
            await response.read()
            if response.status != 200:
                raise FlowError(f"echo {response.status}")
        load.record(request=time.perf_counter() - began)

    return flow


def sign_body(index: int, run: str) -> dict[str, Any]:
    return {
        "name": f"Signer {index}",
        "email": f"s{index}-{run}@example.org",
        "region": "FR-IDF",
        "language": "en",
        "consents": {"updates": index % 2 == 0},
    }


def signer_flow(base: str, sink: MailSink, run: str) -> Flow:
    async def flow(index: int, session: aiohttp.ClientSession, load: Load) -> None:
        data = sign_body(index, run)
        mail = sink.expect(data["email"])
        began = time.perf_counter()
        async with session.post(f"{base}/api/petitions/{SLUG}/signatures", json=data) as response:
            await response.read()
            if response.status != 202:
                sink.waiting.pop(data["email"], None)
                raise FlowError(f"sign {response.status}")
        signed = time.perf_counter()
        try:
            token = await asyncio.wait_for(mail, MAIL_TIMEOUT)
        except TimeoutError:
            sink.waiting.pop(data["email"], None)
            raise FlowError("no mail") from None
        except RuntimeError as e:
            raise FlowError(str(e)) from None
        mailed = time.perf_counter()
        async with session.post(f"{base}/api/signatures/{token}/confirm") as response:
            body = await response.read()
            if response.status != 200:
                raise FlowError(f"confirm {response.status}")
            if json.loads(body).get("status") != "confirmed":
                raise FlowError("confirm: not confirmed")
        done = time.perf_counter()
        load.record(
            flow=done - began, sign=signed - began, mail=mailed - signed, confirm=done - mailed
        )

    return flow


# --------------------------------------------------------------------------- the servers


async def echo_app() -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read(), content_type=request.content_type)

    app = web.Application()
    app.router.add_post("/echo", echo)
    app.router.add_get("/", echo)
    return app


def serve_echo(port: int) -> None:
    """The baseline server: what ``--echo-server PORT`` runs in a child process."""

    async def main() -> None:
        runner = web.AppRunner(await echo_app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())


def make_node(folder: Path, port: int, smtp_port: int, database: str | None = None,
              mail_connections: int | None = None) -> tuple[Path, str]:
    """``fedpetition init``, limits raised, mail to the sink; returns (config, API token)."""
    run_cli("init", str(folder), "--port", str(port),
            *(("--database", database) if database else ()))
    config = folder / CONFIG_NAME
    text = config.read_text(encoding="utf-8")
    for key in (
        "sign_per_ip_per_hour",
        "sign_per_email_domain_per_hour",
        "confirm_per_ip_per_hour",
    ):
        text = set_setting(text, "limits", key, str(HIGH_LIMIT))
    text = set_setting(text, "mail", "smtp_host", '"127.0.0.1"')
    text = set_setting(text, "mail", "smtp_port", str(smtp_port))
    text = set_setting(text, "mail", "smtp_starttls", "false")
    if mail_connections is not None:
        text = set_setting(text, "mail", "connections", str(mail_connections))
    config.write_text(text, encoding="utf-8")
    out = run_cli(
        "admin",
        "--config",
        str(config),
        "create-organiser",
        "bench",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    return config, out.rsplit(":", 1)[1].strip()


async def create_petition(session: aiohttp.ClientSession, base: str, token: str) -> None:
    data = {
        "slug": SLUG,
        "languages": ["fr", "en"],
        "title": {"fr": "Pour un air propre", "en": "For clean air"},
        "text": {"fr": "Nous demandons de l'air propre.", "en": "We ask for clean air."},
        "addressee": "Ministère",
        "deadline": int(time.time()) + 30 * 86400,
        "thresholds": [100, 1000],
    }
    async with session.post(
        f"{base}/api/petitions", json=data, headers={"Authorization": f"Bearer {token}"}
    ) as response:
        if response.status != 201:
            raise RuntimeError(f"creating the petition: {response.status} {await response.text()}")


async def wait_counted(
    session: aiohttp.ClientSession, base: str, expected: int
) -> tuple[int, float]:
    """Poll the petition until its count reaches ``expected``; (count, seconds waited)."""
    began = time.perf_counter()
    count = -1
    while time.perf_counter() - began < SEQUENCE_TIMEOUT:
        async with session.get(f"{base}/api/petitions/{SLUG}") as response:
            count = (await response.json())["counts"]["total"]
        if count >= expected:
            break
        await asyncio.sleep(0.1)
    return count, time.perf_counter() - began


async def verify_bundle(
    session: aiohttp.ClientSession, base: str, folder: Path
) -> tuple[bool, int | None, str]:
    """Download the bundle and run ``fedpetition verify --json``: (ok, total, first failure)."""
    path = folder / "bundle.zip"
    async with session.get(f"{base}/petitions/{SLUG}/bundle.zip") as response:
        if response.status != 200:
            return False, None, f"bundle.zip answered {response.status}"
        path.write_bytes(await response.read())
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "fedpetition.cli", "verify", "--json", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        return False, None, done.stderr.strip() or "verify printed no report"
    total = report["tally"]["total"] if report.get("tally") else None
    failed = [s for s in report["steps"] if s["status"] == "fail"]
    reason = f"{failed[0]['step']}: {failed[0].get('detail', '')}" if failed else ""
    return bool(report["ok"]), total, reason


# --------------------------------------------------------------------------- the benchmark


def py_spy_command() -> str:
    """py-spy on PATH or beside this Python (a venv's bin), else exit saying so."""
    beside = Path(sys.executable).with_name("py-spy")
    found = shutil.which("py-spy") or (str(beside) if beside.exists() else None)
    if found is None:
        sys.exit("node_load: --py-spy needs py-spy (pip install py-spy)")
    return found


@dataclass
class NodeRun:
    load: Load
    counted: int
    lag: float
    verified: bool
    verified_total: int | None
    reason: str
    server_cpu: float
    client_cpu: float
    unmatched: int
    database_cpu: float = 0.0


@dataclass(frozen=True)
class Setup:
    """Where the node stores its rows and how many processes serve it."""

    label: str
    database: str | None = None  # None: the default SQLite file
    workers: int = 1
    smtp_delay: float = 0.0  # seconds the sink waits before each reply
    mail_connections: int | None = None  # [mail] connections; None: the node's default


class DistantSMTP(SMTP):
    """The sink as a distant server: each reply leaves ``delay`` seconds late, as if
    every command and its answer crossed a network with that round-trip time."""

    def __init__(self, *args: Any, delay: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.delay = delay

    async def push(self, status: Any) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        await super().push(status)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """``<address> [parameters]`` read directly. aiosmtpd parses every address
        with the email package's header parser and defines a class on each call: a
        fifth of this process's CPU, taken from the node it measures. Any other form
        goes to aiosmtpd (a private method: were it renamed, its own parsing runs)."""
        if arg.startswith("<"):
            end = arg.find(">")
            address = arg[1:end]
            if end > 0 and address.isascii() and not any(c in address for c in '<" \\'):
                return address, arg[end + 1:]
        return super()._getaddr(arg)  # type: ignore[no-any-return]


async def bench_echo(signers: int, concurrency: int, seconds: float) -> Load:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.node_load", "--echo-server", str(port)], cwd=ROOT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            await wait_until_up(session, f"{base}/", process, "the echo server")
        return await drive(echo_flow(base), signers, concurrency, seconds)
    finally:
        stop_process(process)


async def bench_node(
    folder: Path,
    signers: int,
    concurrency: int,
    seconds: float,
    py_spy: Path | None,
    py_spy_flags: tuple[str, ...] = (),
    setup: Setup | None = None,
) -> NodeRun:
    setup = setup or Setup("SQLite")
    loop = asyncio.get_running_loop()
    sink = MailSink()
    smtp_port = free_port()
    smtp = await loop.create_server(
        lambda: DistantSMTP(sink, hostname="sink.invalid", enable_SMTPUTF8=True, loop=loop,
                            delay=setup.smtp_delay),
        "127.0.0.1",
        smtp_port,
    )
    port = free_port()
    config, token = await asyncio.to_thread(make_node, folder / "node", port, smtp_port,
                                            setup.database, setup.mail_connections)
    base = f"http://127.0.0.1:{port}"
    log_file = (folder / "node.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "fedpetition.cli", "serve", "--config", str(config),
         "--workers", str(setup.workers)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    profiler = None
    try:
        async with aiohttp.ClientSession() as session:
            await wait_until_up(session, f"{base}/key", process, "the node")
            await create_petition(session, base, token)
            if py_spy is not None:
                command = [
                    py_spy_command(),
                    "record",
                    "--pid",
                    str(process.pid),
                    "--rate",
                    "200",
                    "--format",
                    "raw",
                    "--threads",
                    "--output",
                    str(py_spy),
                ]
                profiler = subprocess.Popen(
                    command + list(py_spy_flags),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                await asyncio.sleep(1.0)  # let py-spy attach
            server_before, client_before = cpu_seconds(process.pid), time.process_time()
            database_before = postgres_cpu_seconds()
            load = await drive(
                signer_flow(base, sink, secrets.token_hex(3)), signers, concurrency, seconds
            )
            server_cpu = cpu_seconds(process.pid) - server_before
            client_cpu = time.process_time() - client_before
            database_cpu = postgres_cpu_seconds() - database_before
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                await asyncio.to_thread(profiler.wait, 30)
            counted, lag = await wait_counted(session, base, load.completed)
            verified, total, reason = await verify_bundle(session, base, folder)
    except BaseException:
        log_file.flush()
        tail = (folder / "node.log").read_text(errors="replace").splitlines()[-30:]
        print("node log (last lines):", *tail, sep="\n  ", file=sys.stderr)
        raise
    finally:
        if profiler is not None and profiler.poll() is None:
            profiler.kill()
        stop_process(process)
        log_file.close()
        smtp.close()
    return NodeRun(
        load,
        counted,
        lag,
        verified,
        total,
        reason,
        server_cpu,
        client_cpu,
        sink.unmatched,
        database_cpu if setup.database else 0.0,
    )


def bench_node_load(
    signers: int,
    concurrency: int = 64,
    seconds: float = 40.0,
    *,
    py_spy: Path | None = None,
    py_spy_flags: tuple[str, ...] = (),
    keep: bool = False,
    postgres: str | None = None,
    workers: tuple[int, ...] = (1, 2, 4),
    smtp_delay: float = 0.0,
    mail_connections: int | None = None,
) -> None:
    """Print the node's figures and their baseline; exit non-zero if a tally is wrong.

    With ``postgres`` (a server URL), the same load also runs on PostgreSQL with each
    number of ``workers``, and a table compares them with SQLite.
    """
    print(
        f"node: {signers:,} signers (sign, mail, confirm) at concurrency {concurrency}, "
        f"at most {seconds:.0f} s"
    )
    if smtp_delay:
        print(f"  the SMTP sink answers each command {smtp_delay * 1000:.0f} ms late; the node "
              f"keeps {mail_connections or 'its default number of'} connections to it")
    echo = asyncio.run(bench_echo(signers, concurrency, seconds))
    mail = {"smtp_delay": smtp_delay, "mail_connections": mail_connections}
    setups = [Setup("SQLite", **mail)]
    if postgres:
        setups += [Setup(f"PostgreSQL, {n} worker{'s' if n > 1 else ''}", postgres, n, **mail)
                   for n in workers]
    runs: list[tuple[Setup, NodeRun]] = []
    for setup in setups:
        folder = Path(tempfile.mkdtemp(prefix="node-load-"))
        schema = f"bench_{secrets.token_hex(4)}"
        database = f"{setup.database}?schema={schema}" if setup.database else None
        try:
            run = asyncio.run(bench_node(folder, signers, concurrency, seconds, py_spy,
                                         py_spy_flags,
                                         dataclasses.replace(setup, database=database)))
        finally:
            if setup.database:
                drop_schema(setup.database, schema)
            if keep:
                print(f"  (node folder kept: {folder})")
            else:
                shutil.rmtree(folder, ignore_errors=True)
        runs.append((setup, run))
        if len(runs) == 1:
            print_details(signers, run, echo)
    if len(runs) > 1:
        print_table(runs, echo)
    problems = [f"{setup.label}: {problem}" for setup, run in runs
                for problem in check(run, echo)]
    if problems:
        print("  FAILED: " + "; ".join(problems), file=sys.stderr)
        sys.exit("node_load: the node lost, refused or miscounted signatures")


def drop_schema(server: str, schema: str) -> None:
    import asyncpg

    async def drop() -> None:
        connection = await asyncpg.connect(server)
        try:
            await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await connection.close()

    asyncio.run(drop())


def postgres_unreachable(url: str) -> str | None:
    """Why PostgreSQL at ``url`` cannot be used, or None if it answers."""
    import asyncpg

    async def probe() -> None:
        connection = await asyncpg.connect(url, timeout=5)
        await connection.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError) as e:
        return str(e) or type(e).__name__
    return None


def print_details(signers: int, run: NodeRun, echo: Load) -> None:
    load = run.load
    per_signature = run.server_cpu / load.completed * 1000 if load.completed else math.nan
    capped = (
        f", time cap: {signers - load.started:,} never started" if load.started < signers else ""
    )
    print(
        f"  confirmed signatures          {load.completed:,} of {load.started:,} in "
        f"{load.seconds:.2f} s{capped}"
    )
    print(f"  confirmed signatures/s        {load.rate():8.1f}   (target {TARGET:,.0f})")
    print(
        f"  full flow p50 / p99           {load.ms('flow', 50):8.1f} / {load.ms('flow', 99):.1f} ms"
    )
    print(
        f"  confirm call p50 / p99        {load.ms('confirm', 50):8.1f} / "
        f"{load.ms('confirm', 99):.1f} ms"
    )
    print(
        f"  sign call p50 / p99           {load.ms('sign', 50):8.1f} / "
        f"{load.ms('sign', 99):.1f} ms   (answers after the SMTP send)"
    )
    print(
        f"  server CPU                    {run.server_cpu / load.seconds:8.0%} of a core, "
        f"{per_signature:.2f} ms per signature"
    )
    print(f"  client + SMTP sink CPU        {run.client_cpu / load.seconds:8.0%} of a core")
    print(f"  echo baseline requests/s      {echo.rate():8.1f}   ({echo.completed:,} requests)")
    print(
        f"  echo p50 / p99                {echo.ms('request', 50):8.1f} / "
        f"{echo.ms('request', 99):.1f} ms"
    )
    ratio = load.rate() / echo.rate() if echo.rate() else math.nan
    print(f"  ratio confirmed/s / echo req/s {ratio:7.3f}")
    print(
        f"  sequenced                     {run.counted:,} counted "
        f"{run.lag:.1f} s after the last confirmation"
    )
    verdict = "OK" if run.verified else f"FAIL ({run.reason})"
    total = "-" if run.verified_total is None else f"{run.verified_total:,}"
    print(f"  bundle verify                 {verdict}, total {total}")


def print_table(runs: list[tuple[Setup, NodeRun]], echo: Load) -> None:
    print("  backend                         conf/s  flow p50 / p99 ms  confirm p99  "
          "node CPU  db CPU  ratio/echo  verify")
    for setup, run in runs:
        load = run.load
        ratio = load.rate() / echo.rate() if echo.rate() else math.nan
        node_cpu = run.server_cpu / load.seconds if load.seconds else math.nan
        db_cpu = run.database_cpu / load.seconds if load.seconds else math.nan
        verdict = "OK" if run.verified and run.verified_total == load.completed else "FAIL"
        print(f"  {setup.label:<30} {load.rate():7.1f}  {load.ms('flow', 50):7.1f} / "
              f"{load.ms('flow', 99):7.1f}  {load.ms('confirm', 99):8.1f} ms  "
              f"{node_cpu:7.0%}  {db_cpu:6.0%}  {ratio:9.3f}   {verdict}")


def check(run: NodeRun, echo: Load) -> list[str]:
    """What went wrong in a run: lost, refused or miscounted signatures."""
    load = run.load
    verdict = "OK" if run.verified else f"FAIL ({run.reason})"
    total = "-" if run.verified_total is None else f"{run.verified_total:,}"
    problems = []
    if load.errors or echo.errors:
        problems.append(
            "failed flows: "
            + ", ".join(f"{kind} x{n}" for kind, n in (load.errors + echo.errors).most_common())
        )
    if run.unmatched:
        problems.append(f"{run.unmatched} mails matched no waiting signer")
    if run.counted != load.completed:
        problems.append(f"the node counts {run.counted:,}, {load.completed:,} were confirmed")
    if not run.verified or run.verified_total != load.completed:
        problems.append(
            f"the bundle verifies {verdict} with total {total}, {load.completed:,} were confirmed"
        )
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true",
                        help=f"{FULL_SIGNERS:,} signers (default 2,000)")
    parser.add_argument("--signers", type=int, help="number of signers")
    parser.add_argument("--concurrency", type=int, default=64, help="signers at once")
    parser.add_argument("--seconds", type=float, help="start no signer after this long")
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="FILE",
        help="record the node with py-spy (raw collapsed stacks) into FILE",
    )
    parser.add_argument(
        "--idle",
        action="store_true",
        help="with --py-spy: also sample threads that wait (where time goes)",
    )
    parser.add_argument(
        "--gil",
        action="store_true",
        help="with --py-spy: only sample the thread holding the GIL (where CPU goes)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the node's folder")
    parser.add_argument("--postgres", metavar="URL",
                        help="also run on this PostgreSQL server with several workers")
    parser.add_argument("--workers", default="1,2,4",
                        help="with --postgres: the worker counts to run (default 1,2,4)")
    parser.add_argument("--smtp-delay", type=float, default=0.0, metavar="MS",
                        help="the SMTP sink answers each command this late, as a distant "
                        "server would (default 0)")
    parser.add_argument("--mail-connections", type=int, metavar="N",
                        help="the node's [mail] connections (default: the node's own)")
    parser.add_argument("--echo-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        serve_echo(args.echo_server)
        return
    signers = args.signers or (FULL_SIGNERS if args.full else 2_000)
    seconds = args.seconds or (FULL_SECONDS if args.full else 40.0)
    bench_node_load(
        signers, args.concurrency, seconds, py_spy=args.py_spy, keep=args.keep,
        py_spy_flags=(("--idle",) if args.idle else ()) + (("--gil",) if args.gil else ()),
        postgres=args.postgres, workers=tuple(int(n) for n in args.workers.split(",")),
        smtp_delay=args.smtp_delay / 1000, mail_connections=args.mail_connections,
    )


if __name__ == "__main__":
    main()
