"""Three real nodes on loopback: co-hosting, witnessing and the federated tally."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fedpetition.cli import main
from fedpetition.core.verification import Verification
from fedpetition.verify.archive import ZipSource
from fedpetition.verify.http import HttpSource
from tests.federation.nodes import RunningNode, make_nodes, wait_for

SLUG = "clean-air"


@pytest.fixture
async def three(tmp_path: Path) -> AsyncIterator[list[RunningNode]]:
    nodes = await make_nodes(tmp_path, 3)
    yield nodes
    for running in nodes:
        await running.stop()


async def co_host(nodes: list[RunningNode]) -> str:
    """A petition on the first node, hosted by the others; its URL once all agree."""
    origin, *hosts = nodes
    url = await origin.create_petition(SLUG)
    for host in hosts:
        await host.host(url)

    async def everyone_hosts() -> bool:
        for running in nodes:
            status, body = await running.request("GET", f"/api/petitions/{SLUG}/federated")
            if status != 200 or len(body["hosts"]) != len(nodes):
                return False
        return True

    await wait_for("every node to see the three hosts", everyone_hosts)
    return url


async def all_counts(nodes: list[RunningNode], total: int) -> bool:
    for running in nodes:
        count = await running.federated(SLUG)
        if count["total"] != total or any(h["problem"] for h in count["hosts"]):
            return False
    return True


async def test_three_nodes_co_host_witness_and_agree_on_the_tally(
        three: list[RunningNode], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = await co_host(three)
    origin, second, _ = three
    # The origin's roster names the three hosts and a witness policy over them.
    roster = origin.federation.roster(
        await origin.node.storage.petition_by_slug(SLUG))  # type: ignore[union-attr, arg-type]
    assert [h.name for h in roster.hosts] == [n.name for n in three]
    assert roster.policy.quorum == 1 and len(roster.policy.witnesses) == 3
    for i, running in enumerate(three):
        for j in range(2):
            await running.sign_and_confirm(SLUG, f"signer{i}-{j}@example.org")
    await wait_for("every node to count 6", lambda: all_counts(three, 6))
    count = await second.federated(SLUG)
    assert [h["name"] for h in count["hosts"]] == [n.name for n in three]
    assert [h["counted"] for h in count["hosts"]] == [2, 2, 2]
    # Each log's served checkpoint carries a cosignature by another host.
    for h in count["hosts"]:
        assert h["cosigners"] and h["name"] not in h["cosigners"]

    # A verifier recomputes the same tally from the live nodes...
    report = await asyncio.to_thread(lambda: Verification(HttpSource(url)).run())
    assert report.ok, [f.step for f in report.failures]
    assert report.tally.total == 6
    assert [log.host for log in report.tally.logs] == [n.name for n in three]
    # ... and from a bundle fetched from them.
    out = tmp_path / "bundle.zip"
    assert await asyncio.to_thread(main, ["bundle", url, "--out", str(out)]) == 0
    with ZipSource(str(out)) as source:
        report = Verification(source).run()
    assert report.ok and report.tally.total == 6
    assert await asyncio.to_thread(main, ["verify", url]) == 0
    assert "6" in capsys.readouterr().out
