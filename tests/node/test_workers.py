"""Two processes of one node on one database: each sequencer batch is a compare-and-swap.

Two ``Node`` objects built from one config stand for two worker processes: each has
its own storage connection(s), sequencer and in-memory logs. Both sequence at once
(on SQLite both hold the lease, which is the worst case the compare-and-swap must
survive), and the stored log must stay one log that counts each signature once.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from fedpetition.core.verification import Verification
from fedpetition.node.app import make_app
from fedpetition.node.config import load_config
from fedpetition.node.errors import StorageError
from fedpetition.node.mail import MemoryMailer
from fedpetition.node.server import build_node, init_node
from fedpetition.node.service import Node, SignatureForm
from fedpetition.node.storage.base import COUNTED, WITHDRAWN
from fedpetition.verify.archive import ZipSource
from tests.conftest import Databases

from .conftest import free_port

SLUG = "two-workers"


@pytest.fixture
async def pair(tmp_path: Path, databases: Databases) -> AsyncIterator[tuple[Node, Node]]:
    port = free_port()
    name = f"127.0.0.1:{port}"
    config = await init_node(tmp_path / "node", name, f"http://{name}", listen_port=port,
                             database_url=databases.new())
    nodes = []
    for _ in range(2):
        node = await build_node(load_config(config))
        node.mailer = MemoryMailer()
        nodes.append(node)
    first, second = nodes
    await first.create_petition(None, {
        "slug": SLUG, "languages": ["en"], "title": "Two workers", "text": "One log.",
        "addressee": "Operators", "deadline": int(first.clock()) + 86400})
    for node in nodes:
        await node.start()
    yield first, second
    for node in nodes:
        await node.storage.close()


async def confirmed(node: Node, email: str) -> str:
    await node.sign(SLUG, SignatureForm("Worker Test", email, "FR"), "test")
    assert isinstance(node.mailer, MemoryMailer)
    token = node.mailer.last_token(email)
    await node.confirm(token, "test")
    return token


async def verified_total(node: Node) -> int:
    async with TestClient(TestServer(make_app(node, background=False))) as client:
        response = await client.get(f"/petitions/{SLUG}/bundle.zip")
        assert response.status == 200
        data = await response.read()
    with ZipSource(io.BytesIO(data)) as source:
        report = await asyncio.to_thread(Verification(source).run)
    assert report.ok, [(s.step, s.detail) for s in report.failures]
    assert report.tally is not None
    return report.tally.total


async def test_two_sequencers_at_once_keep_one_log(pair: tuple[Node, Node]) -> None:
    first, second = pair
    tokens = []
    for round_ in range(6):
        for i in range(5):
            node = first if i % 2 else second
            tokens.append(await confirmed(node, f"r{round_}-{i}@example.org"))
        # Both sequence the same queue at the same moment: one batch commits, the
        # other is refused (StaleLogError) and its sequencer catches up.
        await asyncio.gather(first.sequencer.sequence_once(), second.sequencer.sequence_once())
    for node in pair:
        while await node.sequencer.sequence_once():
            pass
    for node in pair:
        current = node.sequencer.logs[1]
        await node.sequencer.catch_up(current)
        assert current.state.size == len(tokens)
        assert current.stats.count == len(tokens)  # no entry replayed twice
    statuses = {(await first.signer_view(t)).signature.status for t in tokens}
    assert statuses == {COUNTED}
    checkpoints = await first.storage.checkpoints(1)
    assert [size for size, _ in checkpoints] == sorted({size for size, _ in checkpoints})
    assert await verified_total(first) == len(tokens)


async def test_a_stale_queue_read_cannot_count_a_withdrawn_signer_again(
        pair: tuple[Node, Node]) -> None:
    """B reads the queue; A commits the signature, the signer withdraws, A commits the
    withdrawal; then B sequences what it read. Its batch is on the log's current size,
    but its queue rows are gone: refused, nothing appended."""
    first, second = pair
    token = await confirmed(first, "once@example.org")
    stale = await second.storage.queued(100)
    assert len(stale) == 1
    await first.sequencer.sequence_once()
    await first.withdraw(token)
    await first.sequencer.sequence_once()
    record = await second.storage.petition_by_id(stale[0].petition)
    assert record is not None
    second.sequencer.logs.pop(record.id, None)  # as if B had not loaded the petition yet
    await second.sequencer._sequence_petition(record.id, stale)
    log = await first.storage.log(record.id)
    assert log is not None and log.size == 2  # sign, withdraw: nothing more
    assert (await first.signer_view(token)).signature.status == WITHDRAWN
    assert second.sequencer.logs[record.id].stats.count == 0
    assert await verified_total(second) == 0


async def test_a_takeover_that_fails_half_way_is_tried_again(
        pair: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch) -> None:
    """Taking the lease starts the sequencer's other work; if that fails (the database
    away a moment), the next period starts it, rather than leading without it."""
    node = pair[0]
    calls: list[bool] = []

    async def on_lead(leading: bool) -> None:
        calls.append(leading)

    node.sequencer.on_lead = on_lead
    petitions = node.storage.petitions
    failures = iter([StorageError("database unavailable")])

    async def flaky() -> Any:
        for error in failures:
            raise error
        return await petitions()

    monkeypatch.setattr(node.storage, "petitions", flaky)
    with pytest.raises(StorageError):
        await node.sequencer._period()
    assert not node.sequencer.leading and calls == []
    await node.sequencer._period()
    assert node.sequencer.leading and calls == [True]
