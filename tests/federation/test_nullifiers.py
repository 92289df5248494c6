"""Nullifiers across real nodes: the origin's evaluations, its absence, a lying origin."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest

from fedpetition.core import voprf
from fedpetition.core.documents import EvaluationCounts, SignedDocument
from fedpetition.core.nullifiers import petition_key_pair
from fedpetition.node.keys import DataKey
from tests.conftest import Databases
from tests.federation.nodes import RunningNode, running_nodes, wait_for
from tests.federation.test_federation import SLUG, all_counts, co_host


async def awaiting(node: RunningNode) -> int:
    assert node.node is not None
    return len(await node.node.storage.awaiting_nullifiers(100))


async def test_an_origin_that_is_down_delays_but_loses_nothing(two: list[RunningNode]) -> None:
    origin, host = two
    await co_host(two)
    await origin.stop()
    await host.sign_and_confirm(SLUG, "patient@example.org")
    assert await awaiting(host) == 1  # confirmed, durable, waiting for its nullifier
    status, body = await host.request("GET", f"/api/petitions/{SLUG}")
    assert status == 200 and body["count"] == 0
    await origin.start()
    await wait_for("the signature to be counted everywhere", lambda: all_counts(two, 1))
    assert await awaiting(host) == 0
    # One evaluation served to the host, counted durably across the origin's restart.
    assert await signed_counts(origin) == {host.name: 1}


async def test_an_evaluation_under_another_key_is_refused(
        two: list[RunningNode], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    origin, host = two
    await co_host(two)
    assert origin.node is not None
    # The origin evaluates with a key other than the one its signed petition publishes.
    other = petition_key_pair(b"\x01" * 32, f"{origin.name}/{SLUG}")
    monkeypatch.setattr(DataKey, "oprf_key_pair", lambda self, petition_id: other)
    await host.sign_and_confirm(SLUG, "careful@example.org")
    assert host.node is not None
    with caplog.at_level(logging.WARNING, logger="fedpetition.federation"):
        assert await host.federation.fetch_nullifiers() is False
    assert "proof" in caplog.text.lower()
    assert await awaiting(host) == 1  # refused, kept, asked again later
    monkeypatch.undo()
    await wait_for("an honest answer to be taken", lambda: all_counts(two, 1))


async def signed_counts(origin: RunningNode) -> dict[str, int]:
    """The origin's evaluation counts (spec §3.6), checked against its node key."""
    assert origin.node is not None
    status, data = await origin.request("GET", f"/petitions/{SLUG}/evaluations")
    assert status == 200 and isinstance(data, bytes), data
    document = SignedDocument.decode(data)
    document.verify(origin.node.signer.verifier_key())
    counts = EvaluationCounts.decode(document.body)
    assert counts.petition == f"{origin.name}/{SLUG}"
    assert abs(counts.time - origin.node.now()) < 60
    return dict(counts.counts)


async def test_only_a_host_gets_evaluations(tmp_path: Path, databases: Databases) -> None:
    async with running_nodes(tmp_path, 3, databases=databases) as nodes:
        origin, host, stranger = nodes
        await co_host([origin, host])
        _, blinded = voprf.blind(b"any input")
        body = json.dumps({"blinded": [base64.b64encode(blinded).decode()]})
        url = f"{origin.url}/petitions/{SLUG}/evaluate"

        async def evaluate_as(sender: RunningNode) -> tuple[int, dict[str, object]]:
            headers = sender.federation.peers.sign("POST", url, body.encode(),
                                                   "application/json")
            result: tuple[int, dict[str, object]] = await origin.request(
                "POST", f"/petitions/{SLUG}/evaluate", data=body, headers=headers)
            return result

        status, answer = await evaluate_as(stranger)  # a node, but not a host
        assert (status, answer["error"]) == (403, "origin")
        status, answer = await evaluate_as(host)
        assert status == 200 and len(answer["evaluated"]) == 1  # type: ignore[arg-type]
        status, answer = await origin.request("POST", f"/petitions/{SLUG}/evaluate", data=body,
                                              headers={"Content-Type": "application/json"})
        assert (status, answer["error"]) == (401, "missing_signature")
        assert await signed_counts(origin) == {host.name: 1}  # the stranger was not counted
        status, served = await origin.request("GET", f"/api/petitions/{SLUG}/evaluations")
        assert status == 200 and served["evaluations"] == {host.name: 1}
        # A batch of three more: the counts grow by three, at once.
        three = json.dumps({"blinded": [base64.b64encode(voprf.blind(bytes([i]))[1]).decode()
                                        for i in range(3)]})
        headers = host.federation.peers.sign("POST", url, three.encode(), "application/json")
        status, _ = await origin.request("POST", f"/petitions/{SLUG}/evaluate", data=three,
                                         headers=headers)
        assert status == 200
        assert await signed_counts(origin) == {host.name: 4}
        # Only the origin publishes counts.
        status, _ = await host.request("GET", f"/petitions/{SLUG}/evaluations")
        assert status == 404
