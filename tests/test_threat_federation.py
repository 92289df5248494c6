"""Claims of spec/threat-model.md about nullifiers, shown on real nodes over real HTTP.

Some tests show a mechanism at work (a host's signer's address never reaches
the origin; evaluation requests are bounded; a host's invented entries show
against the origin's published counts). Others show what is *not* prevented,
so that the threat model's plain statements stay true: the origin, and any
host, can test whether an address signed. Two are strict expected failures:
they state a weakness found while writing the threat model and fail (XPASS)
once it is fixed, at which point the threat model must be updated.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import fedpetition.node.federation as node_federation
from fedpetition.core import names, tiles, voprf
from fedpetition.core.documents import EvaluationCounts, PetitionVersion, SignedDocument
from fedpetition.core.entries import SignEntry, coarse_time, parse_entry
from fedpetition.core.notes import Signer
from fedpetition.core.nullifiers import nullifier, nullifier_input
from fedpetition.core.verification import FLAG_EXCEEDED
from fedpetition.federation import httpsig
from fedpetition.federation.documents import actor_document
from fedpetition.verify.http import verify_live
from tests.conftest import Databases
from tests.federation.nodes import RunningNode, running_nodes, wait_for
from tests.federation.test_federation import SLUG, all_counts, co_host


def petition_id(origin: RunningNode) -> str:
    return f"{origin.name}/{SLUG}"


async def published_nullifiers(log_origin: str) -> list[bytes]:
    """The nullifiers of the sign entries of a log, read as anyone reads them."""
    return [entry.nullifier for entry in await published_signs(log_origin)]


async def published_signs(log_origin: str) -> list[SignEntry]:
    """The sign entries of a log, read as anyone reads them."""
    found = []
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://{log_origin}/checkpoint") as response:
            assert response.status == 200
            size = int((await response.text()).split("\n")[1])
        for coord in tiles.tiles_for_size(size):
            if coord.kind != "entries":
                continue
            async with session.get(f"http://{log_origin}/{coord.path}") as response:
                data = await response.read()
            for raw in tiles.decode_entry_bundle(data, coord.width):
                entry = parse_entry(raw)
                if isinstance(entry, SignEntry):
                    found.append(entry)
    return found


async def served(origin: RunningNode) -> dict[str, int]:
    """The origin's evaluation counts as a verifier reads them: its signed document."""
    async with aiohttp.ClientSession() as session, session.get(
            f"{origin.url}/petitions/{SLUG}/evaluations") as response:
        assert response.status == 200
        document = SignedDocument.decode(await response.read())
    assert origin.node is not None
    document.verify(origin.node.signer.verifier_key())
    counts = EvaluationCounts.decode(document.body)
    assert counts.petition == petition_id(origin)
    return dict(counts.counts)


async def published_oprf_key(origin: RunningNode) -> bytes:
    """The VOPRF public key as a host or verifier takes it: from the signed version 1."""
    async with aiohttp.ClientSession() as session, session.get(
            f"{origin.url}/petitions/{SLUG}/versions/1") as response:
        assert response.status == 200
        document = SignedDocument.decode(await response.read())
    return PetitionVersion.decode(document.body).oprf_key


def evaluate_request(blinded: list[bytes]) -> bytes:
    return json.dumps({"blinded": [base64.b64encode(b).decode() for b in blinded]}).encode()


async def post_evaluate(origin: RunningNode, sender: RunningNode | None, body: bytes,
                        headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """POST to the origin's evaluate endpoint, signed by ``sender`` unless headers are given."""
    url = f"{origin.url}/petitions/{SLUG}/evaluate"
    if headers is None:
        assert sender is not None
        headers = sender.federation.peers.sign("POST", url, body, "application/json")
    return await origin.request("POST", f"/petitions/{SLUG}/evaluate", data=body,
                                headers=headers)


# --------------------------------------------------------------------------- what the origin learns


async def test_threat_a_hosts_signer_address_never_reaches_the_origin(
        two: list[RunningNode], monkeypatch: pytest.MonkeyPatch) -> None:
    """The host sends the origin blinded elements only: not the address, not its
    unblinded hash-to-group element, not the nullifier; the origin stores nothing
    that holds the address."""
    origin, host = two
    await co_host(two)
    sent: list[tuple[str, bytes]] = []
    post = host.federation.peers.post

    async def spy(url: str, body: bytes, *args: Any, **kwargs: Any) -> Any:
        sent.append((url, body))
        return await post(url, body, *args, **kwargs)

    monkeypatch.setattr(host.federation.peers, "post", spy)
    address = "zz-threat-canary-host@example.org"
    await host.sign_and_confirm(SLUG, address)
    await wait_for("both nodes to count 1", lambda: all_counts(two, 1))
    requests = [body for url, body in sent if url.endswith(f"/petitions/{SLUG}/evaluate")]
    assert requests, "the host never asked the origin to evaluate"
    data = nullifier_input(petition_id(origin), address)
    _, unblinded = voprf.blind(data, blind=(1).to_bytes(32, "little"))  # 1 * HashToGroup
    (counted,) = await published_nullifiers(names.log_origin(host.name, petition_id(origin)))
    for body in requests:
        for needle in (address.encode(), b"zz-threat-canary-host", data):
            assert needle not in body
        blinded = [base64.b64decode(b) for b in json.loads(body)["blinded"]]
        assert unblinded not in blinded and counted not in blinded
        assert base64.b64encode(counted) not in body
    # Nothing the origin keeps holds the address: database, WAL, keys, everything.
    files = [p for p in origin.folder.rglob("*") if p.is_file()]
    assert files
    for path in files:
        content = path.read_bytes()
        assert b"zz-threat-canary-host" not in content, path
        assert b"zz-threat-canary-host".upper() not in content, path


async def test_threat_the_origin_can_test_whether_an_address_signed_on_a_host(
        two: list[RunningNode]) -> None:
    """Not prevented: the origin holds the petition's VOPRF key, so it computes any
    address's nullifier itself and looks for it in the public logs, leaving no trace
    in the counts it publishes."""
    origin, host = two
    await co_host(two)
    await host.sign_and_confirm(SLUG, "zz-tested-by-origin@example.org")
    await wait_for("both nodes to count 1", lambda: all_counts(two, 1))
    before = await served(origin)
    assert origin.node is not None
    secret, _ = origin.node.data_key.oprf_key_pair(petition_id(origin))

    def guess(address: str) -> bytes:
        return nullifier(voprf.evaluate(secret, nullifier_input(petition_id(origin), address)))

    log = await published_nullifiers(names.log_origin(host.name, petition_id(origin)))
    assert guess("zz-tested-by-origin@example.org") in log
    assert guess("zz-never-signed@example.org") not in log
    assert await served(origin) == before


async def test_threat_a_host_can_test_whether_an_address_signed_and_is_counted_for_it(
        two: list[RunningNode]) -> None:
    """Not prevented: a host asks for blind evaluations of any addresses it likes (the
    origin cannot tell them from its signers') and looks the nullifiers up in every
    public log. The only trace is the count the origin publishes for that host."""
    origin, host = two
    await co_host(two)
    await origin.sign_and_confirm(SLUG, "zz-tested-by-host@example.org")
    await wait_for("both nodes to count 1", lambda: all_counts(two, 1))
    before = (await served(origin)).get(host.name, 0)
    candidates = ["zz-tested-by-host@example.org", "zz-never-signed@example.org"]
    inputs = [nullifier_input(petition_id(origin), a) for a in candidates]
    blinds, blinded = zip(*(voprf.blind(x) for x in inputs), strict=True)
    status, answer = await post_evaluate(origin, host, evaluate_request(list(blinded)))
    assert status == 200, answer
    outputs = voprf.finalize(
        inputs, list(blinds), [base64.b64decode(e) for e in answer["evaluated"]],
        list(blinded), base64.b64decode(answer["proof"]), await published_oprf_key(origin))
    log = await published_nullifiers(names.log_origin(origin.name, petition_id(origin)))
    assert nullifier(outputs[0]) in log
    assert nullifier(outputs[1]) not in log
    assert (await served(origin))[host.name] == before + 2


async def test_threat_one_signer_on_two_petitions_leaves_no_common_value_in_the_logs(
        tmp_path: Path, databases: Databases) -> None:
    """The same address signs two petitions of one node: the two sign entries share no
    nullifier and no commitment (per-petition VOPRF keys and inputs, fresh salts).
    What stays common is metadata: the host, the hour and the region."""
    async with running_nodes(tmp_path, 1, databases=databases) as (node,):
        slugs = [SLUG, "quiet-streets"]
        for slug in slugs:
            await node.create_petition(slug)
            await node.sign_and_confirm(slug, "zz-two-petitions@example.org")

        async def both_counted() -> bool:
            return all([(await node.federated(slug))["total"] == 1 for slug in slugs])

        await wait_for("both petitions to count their signer", both_counted)
        first, second = [(await published_signs(names.log_origin(node.name,
                                                                   f"{node.name}/{slug}")))
                         for slug in slugs]
        assert len(first) == len(second) == 1
        assert first[0].nullifier != second[0].nullifier
        assert first[0].commitment != second[0].commitment
        assert first[0].region == second[0].region  # "FR-IDF", as both signed
        assert abs(first[0].time - second[0].time) <= 3600  # the same or the next hour


# --------------------------------------------------------------------------- invented entries


async def test_threat_entries_beyond_the_evaluations_served_show_in_the_origins_counts(
        two: list[RunningNode]) -> None:
    """A host appends a well-formed sign entry whose nullifier the origin never
    evaluated. Its log, witnessed and followed, counts it like any other; the origin's
    signed count of evaluations for that host is what shows the excess, and the
    verifier flags the host."""
    origin, host = two
    url = await co_host(two)
    await host.sign_and_confirm(SLUG, "zz-real-signer@example.org")
    await wait_for("both nodes to count 1", lambda: all_counts(two, 1))
    assert host.node is not None
    record = await host.node.storage.petition_by_slug(SLUG)
    assert record is not None
    current = host.node.sequencer.logs[record.id]
    entry = SignEntry(current.digests[max(current.digests)], secrets.token_bytes(32),
                      secrets.token_bytes(32),
                      max(coarse_time(int(time.time())), current.last_time), region="FR-IDF")
    await host.append_raw(SLUG, [entry.encode()], entry.time)
    await wait_for("the invented entry to be counted", lambda: all_counts(two, 2))
    entries = await published_nullifiers(names.log_origin(host.name, petition_id(origin)))
    assert entry.nullifier in entries
    assert len(entries) == 2 and (await served(origin))[host.name] == 1
    # A verifier reading the live nodes counts the entry (the log is valid) and flags
    # the host by name (spec §11.9): a flag, not a failed step.
    report = await asyncio.to_thread(verify_live, url)
    assert report.ok and report.tally is not None and report.tally.total == 2
    assert [(f.flag, f.host) for f in report.flags] == [(FLAG_EXCEEDED, host.name)]


# --------------------------------------------------------------------------- denial of service


async def test_threat_evaluate_requests_are_bounded_in_size_and_rate(
        two: list[RunningNode], monkeypatch: pytest.MonkeyPatch) -> None:
    origin, host = two
    await co_host(two)
    _, element = voprf.blind(b"any input")
    status, error = await post_evaluate(origin, host, evaluate_request([element] * 257))
    assert (status, error["error"]) == (400, "invalid")
    huge = b'{"blinded": ["' + b"A" * (70 * 1024) + b'"]}'
    status, error = await post_evaluate(origin, None, huge,
                                        headers={"Content-Type": "application/json"})
    assert (status, error["error"]) == (413, "too_large")
    monkeypatch.setattr(node_federation, "EVALUATIONS_PER_HOST_PER_HOUR", 2)
    for _ in range(2):
        status, _answer = await post_evaluate(origin, host, evaluate_request([element]))
        assert status == 200
    status, error = await post_evaluate(origin, host, evaluate_request([element]))
    assert (status, error["error"]) == (429, "rate_limited")
    assert (await served(origin))[host.name] == 2  # refused requests are not counted


# --------------------------------------------------------------------------- known weaknesses


async def test_threat_a_replayed_evaluate_request_is_refused(two: list[RunningNode]) -> None:
    origin, host = two
    await co_host(two)
    _, element = voprf.blind(b"any input")
    body = evaluate_request([element])
    url = f"{origin.url}/petitions/{SLUG}/evaluate"
    headers = host.federation.peers.sign("POST", url, body, "application/json")
    status, _ = await post_evaluate(origin, None, body, headers=headers)
    assert status == 200
    status, _ = await post_evaluate(origin, None, body, headers=headers)  # captured, replayed
    assert status in (401, 409)
    # Rearranged headers (another label, an extra member) carry the same signed nonce.
    relabelled = {**headers,
                  "Signature-Input": headers["Signature-Input"].replace("sig1=", "x=", 1),
                  "Signature": headers["Signature"].replace("sig1=", "x=", 1) + ", y=:AA==:"}
    status, _ = await post_evaluate(origin, None, body, headers=relabelled)
    assert status == 409
    assert (await served(origin))[host.name] == 1


async def test_threat_evaluations_need_the_key_the_roster_pins(two: list[RunningNode]) -> None:
    """Whoever takes over a host's web server or domain, but not its node key, serves
    another key in the host's actor document and asks for evaluations in its name."""
    origin, host = two
    await co_host(two)
    await host.stop()
    impostor = Signer(host.name, secrets.token_bytes(32))

    async def actor(request: web.Request) -> web.Response:
        doc = actor_document(host.url, host.name, impostor.public_key,
                             str(impostor.verifier_key()))
        return web.json_response(doc, content_type="application/activity+json")

    app = web.Application()
    app.router.add_get("/actor", actor)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", host.port).start()
    try:
        _, element = voprf.blind(b"any input")
        body = evaluate_request([element])
        url = f"{origin.url}/petitions/{SLUG}/evaluate"
        now = int(time.time())
        headers = httpsig.sign_request(
            "POST", url, {"Content-Type": "application/json"}, body,
            key_id=f"{host.url}/actor#main-key", private_key=impostor, created=now,
            expires=now + 300)
        status, _ = await post_evaluate(origin, None, body, headers=headers)
        assert status in (401, 403)
    finally:
        await runner.cleanup()
