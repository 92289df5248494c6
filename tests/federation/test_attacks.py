"""Attacks on the federation, each refused or caught by name (real nodes, real HTTP)."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from fedpetition.core import names
from fedpetition.core.log import LogAppender
from fedpetition.core.notes import Checkpoint, Signer, sign_checkpoint
from fedpetition.core.verification import Verification
from fedpetition.core.witness import encode_add_checkpoint
from fedpetition.federation import activities as acts
from fedpetition.federation import httpsig
from fedpetition.verify.archive import ZipBundleWriter, ZipSource
from fedpetition.verify.http import HttpSource, verify_live
from tests.conftest import Databases
from tests.federation.nodes import RunningNode, running_nodes, wait_for
from tests.federation.test_federation import SLUG, all_counts, co_host
from tests.node.conftest import free_port


async def post_inbox(target: RunningNode, body: bytes, headers: dict[str, str]
                     ) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.post(
            target.url + "/inbox", data=body,
            headers={"Content-Type": "application/activity+json", **headers}) as response:
        return response.status, await response.json(content_type=None)


def follow(sender: RunningNode, petition_url: str, activity_id: str | None = None,
           actor: str | None = None) -> bytes:
    return json.dumps(acts.activity(
        "Follow", activity_id or acts.new_activity_id(sender.url),
        actor or sender.url + "/actor", petition_url)).encode()


def signed_by(sender: RunningNode, target: RunningNode, body: bytes) -> dict[str, str]:
    return sender.federation.peers.sign("POST", target.url + "/inbox", body,
                                        "application/activity+json")


async def test_a_signed_follow_is_accepted(two: list[RunningNode]) -> None:
    a, b = two
    url = await a.create_petition(SLUG)
    body = follow(b, url)
    assert (await post_inbox(a, body, signed_by(b, a, body)))[0] == 202
    record = await a.node.storage.petition_by_slug(SLUG)  # type: ignore[union-attr]
    assert record is not None
    followers = await a.node.storage.followers(record.id)  # type: ignore[union-attr]
    assert [f.actor for f in followers] == [b.url + "/actor"]


async def test_a_create_is_noted_and_a_create_for_another_origin_refused(
        two: list[RunningNode]) -> None:
    a, b = two
    await b.create_petition("b-petition")
    status, petition = await b.request("GET", "/petitions/b-petition",
                                       headers={"Accept": "application/activity+json"})
    assert status == 200
    body = json.dumps(acts.activity("Create", acts.new_activity_id(b.url), b.url + "/actor",
                                    petition)).encode()
    assert (await post_inbox(a, body, signed_by(b, a, body)))[0] == 202
    assert a.node is not None and await a.node.storage.petitions() == []  # noted only
    # Creating, as B, a petition object claimed to be A's.
    await a.create_petition(SLUG)
    status, theirs = await a.request("GET", f"/petitions/{SLUG}",
                                     headers={"Accept": "application/activity+json"})
    body = json.dumps(acts.activity("Create", acts.new_activity_id(b.url), b.url + "/actor",
                                    theirs)).encode()
    status, error = await post_inbox(a, body, signed_by(b, a, body))
    assert (status, error["error"]) == (403, "origin")


async def test_an_unsigned_request_is_refused(two: list[RunningNode]) -> None:
    a, b = two
    url = await a.create_petition(SLUG)
    status, error = await post_inbox(a, follow(b, url), {})
    assert (status, error["error"]) == (401, "missing_signature")


async def test_a_forged_signature_is_refused(two: list[RunningNode]) -> None:
    a, b = two
    url = await a.create_petition(SLUG)
    body = follow(b, url)
    impostor = Signer.generate(b.name, secrets.token_bytes(32))
    headers = httpsig.sign_request(
        "POST", a.url + "/inbox", {"Content-Type": "application/activity+json"}, body,
        key_id=b.url + "/actor#main-key", private_key=impostor, created=int(time.time()))
    status, error = await post_inbox(a, body, headers)
    assert (status, error["error"]) == (401, "bad_signature")


async def test_a_tampered_body_is_refused(two: list[RunningNode]) -> None:
    a, b = two
    url = await a.create_petition(SLUG)
    body = follow(b, url)
    headers = signed_by(b, a, body)
    status, error = await post_inbox(a, body.replace(b"Follow", b"Announce"), headers)
    assert (status, error["error"]) == (400, "digest_mismatch")


async def test_a_replayed_activity_is_refused(two: list[RunningNode]) -> None:
    a, b = two
    url = await a.create_petition(SLUG)
    body = follow(b, url)
    assert (await post_inbox(a, body, signed_by(b, a, body)))[0] == 202
    # Signed afresh (a valid signature), but the same activity again.
    status, error = await post_inbox(a, body, signed_by(b, a, body))
    assert (status, error["error"]) == (409, "replay")


async def test_an_actor_impersonated_from_another_origin_is_refused(
        two: list[RunningNode]) -> None:
    a, b = two
    url = await a.create_petition(SLUG)
    # B signs an activity claiming to come from A's actor.
    body = follow(b, url, activity_id=acts.new_activity_id(a.url), actor=a.url + "/actor")
    status, error = await post_inbox(a, body, signed_by(b, a, body))
    assert (status, error["error"]) == (403, "origin")
    # B's own actor, but an activity id on A's origin.
    body = follow(b, url, activity_id=acts.new_activity_id(a.url))
    status, error = await post_inbox(a, body, signed_by(b, a, body))
    assert (status, error["error"]) == (403, "origin")
    # B updating a petition object of A's origin (a forged roster would come this way).
    status, petition = await a.request("GET", f"/petitions/{SLUG}",
                                       headers={"Accept": "application/activity+json"})
    assert status == 200
    body = json.dumps(acts.activity("Update", acts.new_activity_id(b.url), b.url + "/actor",
                                    petition)).encode()
    status, error = await post_inbox(a, body, signed_by(b, a, body))
    assert (status, error["error"]) == (403, "origin")


@pytest.fixture
async def evil_redirect() -> AsyncIterator[str]:
    """A loopback server whose actor redirects to another origin."""
    elsewhere = free_port()

    async def actor(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://127.0.0.1:{elsewhere}/actor")

    app = web.Application()
    app.router.add_get("/actor", actor)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_a_key_behind_a_redirect_to_another_origin_is_refused(
        two: list[RunningNode], evil_redirect: str) -> None:
    a, b = two
    url = await a.create_petition(SLUG)
    body = follow(b, url, activity_id=acts.new_activity_id(evil_redirect),
                  actor=evil_redirect + "/actor")
    headers = httpsig.sign_request(
        "POST", a.url + "/inbox", {"Content-Type": "application/activity+json"}, body,
        key_id=evil_redirect + "/actor#main-key",
        private_key=Signer.generate("evil", secrets.token_bytes(32)),
        created=int(time.time()))
    status, error = await post_inbox(a, body, headers)
    assert (status, error["error"]) == (401, "unknown_actor")
    assert "redirect to another origin refused" in error["message"]


async def test_fetches_aimed_at_private_addresses_are_refused(two: list[RunningNode]) -> None:
    a, b = two
    url = await a.create_petition(SLUG)
    # A key said to live on a private address: never fetched.
    body = follow(b, url)
    headers = httpsig.sign_request(
        "POST", a.url + "/inbox", {"Content-Type": "application/activity+json"}, body,
        key_id="https://10.0.0.7/actor#main-key",
        private_key=Signer.generate("evil", secrets.token_bytes(32)),
        created=int(time.time()))
    status, error = await post_inbox(a, body, headers)
    assert (status, error["error"]) == (401, "unknown_actor")
    assert "private address not allowed" in error["message"]
    # An organiser asked to host a petition on a private address: refused too.
    status, error = await b.request("POST", "/api/hosting", headers=b.auth,
                                    json={"url": "http://192.168.1.20/petitions/x"})
    assert (status, error["error"]) == (400, "forbidden_address")


async def test_an_equivocating_host_is_caught_by_its_witness_and_the_verifier(
        two: list[RunningNode], tmp_path: Path) -> None:
    a, b = two
    url = await co_host(two)
    await b.sign_and_confirm(SLUG, "someone@example.org")
    await a.sign_and_confirm(SLUG, "another@example.org")
    await wait_for("both nodes to count 2", lambda: all_counts(two, 2))
    petition_id = f"{a.name}/{SLUG}"
    origin = names.log_origin(b.name, petition_id)
    witnessed = await a.node.storage.witnessed([origin])  # type: ignore[union-attr]
    size = witnessed[origin].size
    assert size == 1
    # B signs a second checkpoint of the same size with another root: a split view.
    fork = LogAppender(origin)
    fork.append([b"\x86" + secrets.token_bytes(40)])
    forked = sign_checkpoint(Checkpoint(origin, size, fork.checkpoint().root_hash),
                             b.node.signer)  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as session, session.post(
            a.url + "/witness/add-checkpoint",
            data=encode_add_checkpoint(size, [], forked)) as response:
        assert response.status == 409
    status, evidence = await a.request("GET", "/witness/evidence")
    assert status == 200 and [e["kind"] for e in evidence] == ["fork"]
    assert evidence[0]["log"] == origin and evidence[0]["offending"] == forked
    # A reader shown the forked checkpoint: no witness vouches for it.
    out = tmp_path / "split.zip"

    def write_bundle() -> None:
        with HttpSource(url) as source, ZipBundleWriter(str(out)) as writer:
            for member in list(source.members()):
                data = source.read(member)
                if member == f"{origin}/checkpoint":
                    data = forked.encode()
                writer.add(member, data)

    await asyncio.to_thread(write_bundle)
    with ZipSource(str(out)) as bundle:
        report = Verification(bundle).run()
    failed = [(f.step, f.log) for f in report.failures]
    assert failed == [("witness-quorum", origin)]


async def test_a_host_inflating_its_log_with_malformed_entries_is_caught(
        two: list[RunningNode]) -> None:
    a, b = two
    url = await co_host(two)
    await a.sign_and_confirm(SLUG, "real@example.org")
    await wait_for("both nodes to count 1", lambda: all_counts(two, 1))
    # B appends entries that are not valid entries, signs and has them witnessed.
    assert b.node is not None
    record = await b.node.storage.petition_by_slug(SLUG)
    assert record is not None
    current = b.node.sequencer.logs[record.id]
    await b.append_raw(SLUG, [b"\x81\xa1x" + bytes([i]) for i in range(5)], current.last_time)

    async def caught() -> bool:
        count = await a.federated(SLUG)
        host = count["hosts"][1]
        return host["problem"] is not None and host["problem"].startswith("entry-format")

    await wait_for("the origin to catch the malformed log", caught)
    assert (await a.federated(SLUG))["total"] == 1  # the broken log is left out
    report = await asyncio.to_thread(verify_live, url)
    origin = current.origin
    assert [(f.step, f.log) for f in report.failures] == [("entry-format", origin)]
    excluded = await asyncio.to_thread(lambda: verify_live(url, exclude=[b.name]))
    assert excluded.ok and excluded.tally.total == 1


async def test_a_node_down_for_a_while_gets_everything_when_it_returns(
        tmp_path: Path, databases: Databases) -> None:
    async with running_nodes(tmp_path, 3, databases=databases) as nodes:
        a, b, c = nodes
        await co_host(nodes)
        await wait_for("a first agreement", lambda: all_counts(nodes, 0))
        await c.stop()
        await a.sign_and_confirm(SLUG, "one@example.org")
        await b.sign_and_confirm(SLUG, "two@example.org")

        async def a_and_b_count_2() -> bool:
            counts = [await n.federated(SLUG) for n in (a, b)]
            return all(count["total"] == 2 for count in counts)

        await wait_for("A and B to count 2", a_and_b_count_2)
        # C's log is still counted as last seen, and shown as unreachable.
        problem = (await a.federated(SLUG))["hosts"][2]["problem"]
        assert "connection failed" in problem

        async def queued_for_c() -> bool:
            return await a.node.storage.pending_deliveries() > 0  # type: ignore[union-attr]

        await wait_for("A to queue deliveries for C", queued_for_c)
        await c.start()
        await wait_for("C to catch up", lambda: all_counts(nodes, 2))

        async def drained() -> bool:
            return all([await n.node.storage.pending_deliveries() == 0  # type: ignore[union-attr]
                        for n in nodes])

        await wait_for("every queued delivery to arrive", drained)


async def test_deliveries_queued_by_a_node_survive_its_restart(two: list[RunningNode]) -> None:
    a, b = two
    await co_host(two)
    await b.stop()
    # A new version while B is away: its Update waits in A's queue.
    status, _ = await a.request(
        "POST", f"/api/petitions/{SLUG}/versions", headers=a.auth,
        json={"text": {"fr": "Nous demandons de l'air pur.", "en": "We ask for clean air."}})
    assert status == 201
    assert a.node is not None
    assert await a.node.storage.pending_deliveries() > 0
    await a.stop()  # with its queue on disk
    await b.start()
    await a.start()

    async def b_has_version_2() -> bool:
        status, body = await b.request("GET", f"/api/petitions/{SLUG}")
        return status == 200 and body["version"] == 2

    await wait_for("B to receive the version queued before A's restart", b_has_version_2)

    async def drained() -> bool:
        assert a.node is not None
        return await a.node.storage.pending_deliveries() == 0

    await wait_for("A's queue to drain", drained)
