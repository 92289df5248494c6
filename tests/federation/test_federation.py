"""Three real nodes on loopback: co-hosting, witnessing and the federated tally."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import jsonschema
import pytest

from fedpetition.cli import main
from fedpetition.core.verification import Verification
from fedpetition.federation.documents import NODEINFO_21_PROFILE
from fedpetition.verify.archive import ZipSource
from fedpetition.verify.http import verify_live
from tests.conftest import Databases
from tests.federation.nodes import RunningNode, running_nodes, wait_for

SLUG = "clean-air"


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
    # The same person signs on the origin and on the third node: counted once (spec §4.4:
    # both hosts get the same nullifier from the origin's VOPRF, without it seeing the address).
    await origin.sign_and_confirm(SLUG, "Twice@Example.org")
    await three[2].sign_and_confirm(SLUG, "twice@example.org")
    await wait_for("every node to count 7", lambda: all_counts(three, 7))

    async def duplicate_seen_everywhere() -> bool:
        # A total of 7 holds before the third node's entry for the duplicate is in.
        return all([(await n.federated(SLUG)).get("duplicates") == 1 for n in three])

    await wait_for("every node to see the duplicate", duplicate_seen_everywhere)
    count = await second.federated(SLUG)
    assert [h["name"] for h in count["hosts"]] == [n.name for n in three]
    assert [h["counted"] for h in count["hosts"]] == [3, 2, 3]
    assert count["duplicates"] == 1
    # The origin counted the evaluations it served each host, and publishes them (signed at
    # /petitions/<slug>/evaluations, which the verifier reads; as JSON for people).
    status, served = await origin.request("GET", f"/api/petitions/{SLUG}/evaluations")
    assert status == 200
    assert served["evaluations"] == {second.name: 2, three[2].name: 3}
    # Each log's served checkpoint carries a cosignature by another host.
    for h in count["hosts"]:
        assert h["cosigners"] and h["name"] not in h["cosigners"]

    # A verifier recomputes the same tally from the live nodes...
    report = await asyncio.to_thread(verify_live, url)
    assert report.ok, [f.step for f in report.failures]
    assert report.tally.total == 7 and report.tally.duplicates == 1
    assert [log.host for log in report.tally.logs] == [n.name for n in three]
    # The hosts' entries against the evaluations served them: each within, none flagged.
    assert report.evaluations is not None and report.evaluations.status == "checked"
    assert [(h.host, h.sign_entries, h.nullifiers, h.served, h.flagged)
            for h in report.evaluations.hosts] == [(second.name, 2, 2, 2, False),
                                                    (three[2].name, 3, 3, 3, False)]
    assert not report.flags
    # ... and from a bundle fetched from them, which holds the signed counts.
    out = tmp_path / "bundle.zip"
    assert await asyncio.to_thread(main, ["bundle", url, "--out", str(out)]) == 0
    with ZipSource(str(out)) as source:
        assert f"{origin.name}/petitions/{SLUG}/evaluations" in source.members()
        report = Verification(source).run()
    assert report.ok and report.tally.total == 7 and not report.flags
    assert report.evaluations is not None and report.evaluations.status == "checked"
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["verify", url]) == 0
    printed = capsys.readouterr().out
    assert "federated total   7" in printed
    assert "sign entries  nullifiers / evaluations served" in printed
    assert f"  {second.name:<24} {2:>12} {2:>11} / 2\n" in printed
    assert f"  {three[2].name:<24} {3:>12} {3:>11} / 3\n" in printed
    assert "FLAGGED" not in printed


async def test_new_versions_reach_the_hosts_and_a_closed_petition_closes_everywhere(
        tmp_path: Path, databases: Databases) -> None:
    async with running_nodes(tmp_path, 2, databases=databases) as nodes:
        origin, host = nodes
        url = await co_host(nodes)
        # Only the origin changes a petition.
        status, error = await host.request("POST", f"/api/petitions/{SLUG}/versions",
                                           headers=host.auth, json={"text": "Other text."})
        assert (status, error["error"]) == (409, "not_origin")
        # A long text: the Update carrying it is larger than the API's body limit.
        long_text = {"fr": "Nous demandons de l'air pur. " * 1000,
                     "en": "We ask for clean air. " * 1200}
        status, _ = await origin.request("POST", f"/api/petitions/{SLUG}/versions",
                                         headers=origin.auth, json={"text": long_text})
        assert status == 201

        async def host_has_version_2() -> bool:
            status, body = await host.request("GET", f"/api/petitions/{SLUG}")
            return status == 200 and body["version"] == 2

        await wait_for("the host to take version 2", host_has_version_2)
        await host.sign_and_confirm(SLUG, "late@example.org")
        await origin.sign_and_confirm(SLUG, "early@example.org")
        await wait_for("both to count 2", lambda: all_counts(nodes, 2))
        report = await asyncio.to_thread(verify_live, url)
        assert report.ok and report.tally is not None
        assert dict(report.tally.versions) == {2: 2}

        status, _ = await origin.request("POST", f"/api/petitions/{SLUG}/close",
                                         headers=origin.auth)
        assert status == 200

        async def host_closed() -> bool:
            status, body = await host.request("GET", f"/api/petitions/{SLUG}")
            return status == 200 and body["status"] == "closed"

        await wait_for("the host to close the petition", host_closed)
        status, error = await host.request("POST", f"/api/petitions/{SLUG}/signatures",
                                           json={"name": "Too Late", "email": "x@example.org"})
        assert (status, error["error"]) == (409, "closed")


async def test_discovery_documents(three: list[RunningNode]) -> None:
    origin = three[0]
    url = await origin.create_petition(SLUG)
    status, actor = await origin.request("GET", "/actor")
    assert status == 200 and actor["type"] == "Service" and actor["inbox"] == origin.url + "/inbox"
    status, jrd = await origin.request(
        "GET", f"/.well-known/webfinger?resource=acct:{SLUG}@{origin.name}")
    assert status == 200 and jrd["links"][0]["href"] == url
    async with aiohttp.ClientSession() as session, session.get(
            origin.url + "/nodeinfo/2.1") as response:
        assert response.headers["Content-Type"] == NODEINFO_21_PROFILE
    status, info = await origin.request("GET", "/nodeinfo/2.1")
    assert status == 200 and info["metadata"]["petitions"] == 1
    schema = json.loads((Path(__file__).parent / "data" / "nodeinfo-2.1.schema.json").read_text())
    jsonschema.validate(info, schema)
    status, petition = await origin.request(
        "GET", f"/petitions/{SLUG}", headers={"Accept": "application/activity+json"})
    assert status == 200 and petition["id"] == url
    status, _ = await origin.request("GET", f"/petitions/{SLUG}",
                                     headers={"Accept": "text/html"}, allow_redirects=False)
    assert status == 302
