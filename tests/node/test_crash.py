"""kill -9 a real node while signers sign and confirm: nothing acknowledged is lost.

A node made by ``fedpetition init`` runs as ``fedpetition serve`` in a subprocess.
Signers sign, read their link from the node's outbox and confirm, concurrently;
the server is killed with SIGKILL at a random moment, restarted, fed more
signers, killed again and restarted. Then every confirmation the node
acknowledged must be counted with a receipt that verifies, the bundle must
verify and count exactly the counted signatures, and every checkpoint the node
ever served must be a prefix of the final log (no regression, no fork).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import io
import itertools
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fedpetition.core.notes import Checkpoint, VerifierKey, open_checkpoint
from fedpetition.core.receipts import Receipt, check_consistency, verify_receipt
from fedpetition.core.verification import Verification
from fedpetition.node.config import load_config
from fedpetition.verify.archive import ZipSource
from fedpetition.verify.http import latest_consistency
from tests.conftest import POSTGRES_ENV, Databases

from .conftest import PASSWORD, NodeHarness, free_port

SLUG = "crash-test"
LINK = re.compile(r"/s/([A-Za-z0-9_-]{32,100})")
WORKERS = 8
MIN_ACKS = 30  # confirmations acknowledged before a kill may happen
READY_SECONDS = 20.0
PHASE_SECONDS = 30.0
SETTLE_SECONDS = 15.0
TAKEOVER_SECONDS = 10.0
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=10)


def set_setting(text: str, section: str, key: str, value: str) -> str:
    """``text`` with ``[section] key = value``: replaces the (commented) line, else adds it."""
    lines = text.splitlines()
    start = lines.index(f"[{section}]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    setting = re.compile(rf"#?\s*{re.escape(key)}\s*=")
    for i in range(start + 1, end):
        if setting.match(lines[i]):
            lines[i] = f"{key} = {value}"
            break
    else:
        lines.insert(start + 1, f"{key} = {value}")
    return "\n".join(lines) + "\n"


def cli(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "fedpetition.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


class Outbox:
    """The confirmation token mailed to each address, read from the node's .eml files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.read: set[str] = set()
        self.tokens: dict[str, str] = {}  # address -> token of its latest mail

    def scan(self) -> None:
        for path in sorted(self.folder.glob("*.eml")):  # temp files are .name.eml.tmp
            if path.name in self.read:
                continue
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(message, email.message.EmailMessage)
            part = message.get_body(("plain",))
            assert part is not None, path
            found = LINK.search(part.get_content())
            assert found, f"no /s/<token> link in {path.name}"
            self.tokens[str(message["To"])] = found.group(1)
            self.read.add(path.name)

    def token(self, address: str) -> str | None:
        if address not in self.tokens:
            self.scan()
        return self.tokens.get(address)


LEADER = re.compile(r"process (\d+) is now the node's sequencer")


class ServerProcess:
    """``fedpetition serve`` in a subprocess (its own process group), output in a file."""

    def __init__(self, config: Path, output: Path, workers: int = 1) -> None:
        self.config = config
        self.output = output
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None
        self.killed: int | None = None  # the last sequencing worker killed

    def start(self) -> None:
        assert self.process is None
        with self.output.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fedpetition.cli", "serve", "--config", str(self.config),
                 "--workers", str(self.workers)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )

    def leaders(self) -> list[int]:
        """The processes that became the node's sequencer, in order."""
        return [int(pid) for pid in LEADER.findall(self.output.read_text(errors="replace"))]

    def kill_leader(self) -> None:
        """SIGKILL the worker that sequences (the parent starts another worker)."""
        self.killed = self.leaders()[-1]
        os.kill(self.killed, signal.SIGKILL)

    def stop(self) -> None:
        """The whole process group: the parent and its workers."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def tail(self) -> str:
        return self.output.read_text(errors="replace")[-3000:]

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def kill(self) -> None:
        """SIGKILL and reap (does nothing if not running)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def crash(self) -> None:
        """The failure under test: the node's only process, or its sequencing worker."""
        if self.workers == 1:
            self.kill()
        else:
            self.kill_leader()


@dataclass
class Crash:
    base: str
    name: str
    server: ServerProcess
    outbox: Outbox
    session: aiohttp.ClientSession
    rng: random.Random
    acknowledged: set[str] = field(default_factory=set)  # tokens
    served: list[Checkpoint] = field(default_factory=list)  # every checkpoint seen, in order
    addresses: Any = field(default_factory=itertools.count)
    key: VerifierKey | None = None  # the node's, read once it runs

    @property
    def checkpoint_url(self) -> str:
        return f"{self.base}/log/{self.name}/{SLUG}/checkpoint"

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            code = self.server.exited()
            assert code is None, f"the server exited with {code}:\n{self.server.tail()}"
            try:
                async with self.session.get(
                    f"{self.base}/api/petitions", timeout=aiohttp.ClientTimeout(total=2)
                ) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            assert time.monotonic() < deadline, (
                f"the server did not answer within {READY_SECONDS} s:\n{self.server.tail()}"
            )
            await asyncio.sleep(0.05)

    async def checkpoint(self) -> Checkpoint:
        async with self.session.get(self.checkpoint_url) as response:
            assert response.status == 200, await response.text()
            note = await response.text()
        assert self.key is not None
        checkpoint = open_checkpoint(note, self.key).checkpoint
        if self.served:
            assert checkpoint.size >= self.served[-1].size, (
                f"the checkpoint went back from {self.served[-1].size} to {checkpoint.size}"
            )
        self.served.append(checkpoint)
        return checkpoint

    async def sign_and_confirm(self) -> str:
        """One signer: sign, find the mailed link, confirm; the token once acknowledged."""
        address = f"signer-{next(self.addresses)}@example.org"
        async with self.session.post(
            f"{self.base}/api/petitions/{SLUG}/signatures",
            json={"name": "Crash Tester", "email": address, "region": "FR"},
        ) as response:
            assert response.status == 202, (response.status, await response.text())
        token = self.outbox.token(address)
        assert token is not None, f"the node answered 202 but mailed nothing to {address}"
        async with self.session.post(f"{self.base}/api/signatures/{token}/confirm") as response:
            assert response.status == 200, (response.status, await response.text())
            status = (await response.json())["status"]
        assert status in ("confirmed", "counted"), status
        return token

    async def stream_then_kill(self, min_acks: int) -> None:
        """Signers sign and confirm until the server is killed, after ``min_acks`` more acks."""
        target = len(self.acknowledged) + min_acks + self.rng.randrange(20)
        killed = asyncio.Event()

        async def signer() -> None:
            while not killed.is_set():
                try:
                    token = await self.sign_and_confirm()
                except (aiohttp.ClientError, TimeoutError):
                    if killed.is_set():
                        return  # the request died with the server
                    raise
                self.acknowledged.add(token)

        async def observer() -> None:
            while not killed.is_set():
                await self.checkpoint()
                await asyncio.sleep(0.1)

        async def killer() -> None:
            while len(self.acknowledged) < target:
                await asyncio.sleep(0.01)
            await asyncio.sleep(self.rng.uniform(0, 0.3))
            await self.checkpoint()  # the last one served before the kill
            # Nothing awaits between the kill and the flag: a request failing after
            # the kill is always seen as killed.
            self.server.crash()
            killed.set()

        async def guarded(task: Callable[[], Awaitable[None]]) -> None:
            try:
                await task()
            except (aiohttp.ClientError, TimeoutError):
                if not killed.is_set():
                    raise

        try:
            async with asyncio.timeout(PHASE_SECONDS):
                async with asyncio.TaskGroup() as group:  # a failure cancels the others
                    group.create_task(killer())
                    group.create_task(guarded(observer))
                    for _ in range(WORKERS):
                        group.create_task(signer())
        except TimeoutError:
            raise AssertionError(
                f"{len(self.acknowledged)} of {target} confirmations in {PHASE_SECONDS} s:\n"
                f"{self.server.tail()}"
            ) from None

    async def restart(self) -> None:
        if self.server.workers == 1:
            self.server.start()
        else:  # the other worker takes the lease over; the parent replaces the dead one
            deadline = time.monotonic() + TAKEOVER_SECONDS
            while self.server.leaders()[-1] == self.server.killed:
                assert time.monotonic() < deadline, (
                    f"no worker took over within {TAKEOVER_SECONDS} s:\n{self.server.tail()}")
                await asyncio.sleep(0.05)
        await self.wait_ready()
        await self.check_served()

    async def check_served(self) -> None:
        """Every checkpoint served so far is a prefix of the log served now."""
        latest = await self.checkpoint()
        for old in {cp.size: cp for cp in self.served}.values():
            current, proof, _ = await asyncio.to_thread(latest_consistency, old, self.key)
            assert current.size >= latest.size
            check_consistency(old, current, proof)

    async def status(self, token: str) -> str:
        async with self.session.get(f"{self.base}/api/signatures/{token}") as response:
            assert response.status == 200, (response.status, await response.text())
            status: str = (await response.json())["status"]
            return status

    async def settle(self) -> dict[str, str]:
        """Wait until nothing confirmed is left queued; every mailed token's status."""
        deadline = time.monotonic() + SETTLE_SECONDS
        self.outbox.scan()
        while True:
            statuses = {t: await self.status(t) for t in self.outbox.tokens.values()}
            waiting = [t for t, s in statuses.items() if s == "confirmed"]
            if not waiting:
                return statuses
            assert time.monotonic() < deadline, (
                f"{len(waiting)} confirmed signatures not sequenced after {SETTLE_SECONDS} s"
            )
            await asyncio.sleep(0.1)


async def test_kill_9_loses_no_acknowledged_confirmation(tmp_path: Path) -> None:
    await kill_and_check(tmp_path)


async def test_killing_the_sequencing_worker_loses_nothing_and_forks_nothing(
        tmp_path: Path, postgres_database: str | None) -> None:
    """``serve --workers 2`` on PostgreSQL: the worker holding the sequencer lease is
    killed mid-stream, twice; the other takes over, nothing acknowledged is lost, and
    every checkpoint ever served is a prefix of the final log."""
    if postgres_database is None:
        pytest.skip(f"several workers need PostgreSQL: set {POSTGRES_ENV} (.ci/run does)")
    databases = Databases("postgresql", postgres_database, tmp_path)
    try:
        url = databases.new()
        assert url is not None
        await kill_and_check(tmp_path, database=url, workers=2)
    finally:
        await databases.drop()


async def kill_and_check(tmp_path: Path, *, database: str | None = None,
                         workers: int = 1) -> None:
    seed = random.randrange(1 << 32)
    port = free_port()
    folder = tmp_path / "node"
    cli("init", str(folder), "--port", str(port),
        *(("--database", database) if database else ()))
    config = folder / "fedpetition.toml"
    text = config.read_text(encoding="utf-8")
    text = set_setting(text, "sequencer", "period_seconds", "0.2")
    for key in ("sign_per_ip_per_hour", "confirm_per_ip_per_hour"):
        text = set_setting(text, "limits", key, "1000000")
    config.write_text(text, encoding="utf-8")
    loaded = load_config(config)
    assert loaded.sequencer.period_seconds == 0.2
    assert loaded.limits.confirm_per_ip_per_hour == 1_000_000
    out = cli(
        "admin",
        "--config",
        str(config),
        "create-organiser",
        "alice",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    api_token = out.rsplit(":", 1)[1].strip()

    server = ServerProcess(config, tmp_path / "server.log", workers)
    try:
        server.start()
        # No keep-alive: no request may reuse a connection to a server since killed.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT, connector=connector) as session:
            name = f"127.0.0.1:{port}"
            crash = Crash(
                f"http://{name}",
                name,
                server,
                Outbox(loaded.mail.outbox_dir),
                session,
                random.Random(seed),
            )
            await crash.wait_ready()
            async with session.get(f"{crash.base}/key") as response:
                crash.key = VerifierKey.parse((await response.text()).strip())
            async with session.post(
                f"{crash.base}/api/petitions",
                json={
                    "slug": SLUG,
                    "languages": ["en"],
                    "title": "Survive a crash",
                    "text": "Keep every confirmed signature.",
                    "addressee": "Operators",
                    "deadline": int(time.time()) + 86400,
                },
                headers={"Authorization": f"Bearer {api_token}"},
            ) as response:
                assert response.status == 201, await response.text()

            for _ in range(2):
                await crash.stream_then_kill(MIN_ACKS)
                await crash.restart()

            statuses = await crash.settle()
            context = f"seed {seed}, {len(crash.acknowledged)} acknowledged"
            lost = [t for t in crash.acknowledged if statuses[t] != "counted"]
            assert not lost, f"{context}: {len(lost)} acknowledged but not counted"
            counted = sum(1 for s in statuses.values() if s == "counted")

            latest = await crash.checkpoint()
            for token in sorted(crash.acknowledged):
                async with session.get(f"{crash.base}/api/signatures/{token}/receipt") as r:
                    assert r.status == 200, (context, await r.text())
                    receipt = Receipt.decode(await r.read())
                checked = verify_receipt(receipt)
                assert checked.checkpoint.size <= latest.size

            async with session.get(f"{crash.base}/petitions/{SLUG}/bundle.zip") as response:
                assert response.status == 200
                data = await response.read()
            with ZipSource(io.BytesIO(data)) as source:
                report = await asyncio.to_thread(Verification(source).run)
            assert report.ok, (context, [(s.step, s.detail) for s in report.failures])
            assert report.tally is not None and report.tally.total == counted, context
            async with session.get(f"{crash.base}/api/petitions/{SLUG}") as response:
                assert (await response.json())["counts"]["total"] == counted, context
            await crash.check_served()
            assert counted >= len(crash.acknowledged) >= 2 * MIN_ACKS
        logged = server.output.read_text(errors="replace")
        assert "Traceback" not in logged, logged[-3000:]  # no 500, no failed batch
        if workers > 1:
            assert len(set(server.leaders())) == 3, logged[-3000:]  # two takeovers
    finally:
        server.stop()


# --------------------------------------------------------------------------- batches meanwhile


async def _one_counted_one_queued(h: NodeHarness) -> str:
    """A petition with one counted signature (its token returned) and one queued."""
    await h.create_petition()
    first = await h.sign("clean-air", "first@example.org")
    await h.confirm(first)
    await h.sequence()
    await h.confirm(await h.sign("clean-air", "second@example.org"))
    return first


async def test_receipt_verifies_when_a_batch_commits_meanwhile(
    harness: NodeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch committed between the node's read of its checkpoint and of the tiles."""
    h = harness
    first = await _one_counted_one_queued(h)
    storage = h.node.storage
    read_file = storage.read_file
    batches: list[int] = []

    started: list[bool] = []

    async def read_after_a_batch(petition: int, path: str) -> bytes | None:
        if not started:  # once, even if reads overlap (a follower catches up meanwhile)
            started.append(True)
            batches.append(await h.node.sequencer.sequence_once())
        return await read_file(petition, path)

    monkeypatch.setattr(storage, "read_file", read_after_a_batch)
    response = await h.client.get(f"/api/signatures/{first}/receipt")
    assert batches == [1], "the receipt never read the stored tiles"
    assert response.status == 200
    checked = verify_receipt(Receipt.decode(await response.read()))
    # The proof is for the checkpoint the receipt carries, read before the batch.
    assert checked.checkpoint.size == 1
    assert h.node.sequencer.logs[1].checkpoint.size == 2


async def test_bundle_verifies_when_a_batch_commits_meanwhile(
    harness: NodeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch committed while the node reads the tiles of the bundle it is writing."""
    h = harness
    await _one_counted_one_queued(h)
    storage = h.node.storage
    read_file = storage.read_file
    batches: list[int] = []

    started: list[bool] = []

    async def read_after_a_batch(petition: int, path: str) -> bytes | None:
        if not started:  # once, even if reads overlap (a follower catches up meanwhile)
            started.append(True)
            batches.append(await h.node.sequencer.sequence_once())
        return await read_file(petition, path)

    monkeypatch.setattr(storage, "read_file", read_after_a_batch)
    response = await h.client.get("/petitions/clean-air/bundle.zip")
    assert batches == [1] and response.status == 200
    with ZipSource(io.BytesIO(await response.read())) as source:
        report = Verification(source).run()
    assert report.ok, [(s.step, s.detail) for s in report.failures]
