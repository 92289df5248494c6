"""Threat model 3.12 and 3.13: the evaluate and witness requests go through the guarded
fetcher; an origin cannot rewrite a version a host already holds."""

from __future__ import annotations

import dataclasses
import json
import secrets
import time

import pytest

from fedpetition.core.documents import PetitionVersion, SignedDocument, sign_petition
from fedpetition.core.notes import Signer
from fedpetition.federation import activities as acts
from fedpetition.federation.fetch import Fetcher, ForbiddenAddressError
from fedpetition.federation.peers import Peers
from fedpetition.node.federation import EVALUATE_PATH, WITNESS_PATH
from tests.federation.nodes import RunningNode, wait_for
from tests.federation.test_attacks import post_inbox, signed_by
from tests.federation.test_federation import SLUG, co_host


@pytest.mark.parametrize("path", [EVALUATE_PATH.format(slug="any"), WITNESS_PATH])
async def test_threat_evaluate_and_witness_requests_go_through_the_guarded_fetcher(
        path: str) -> None:
    """The node's signed POSTs (evaluations, cosignatures) refuse private addresses."""
    fetcher = Fetcher(user_agent="test")
    peers = Peers(fetcher, Signer.generate("here.example", secrets.token_bytes(32)),
                  "https://here.example")
    try:
        for host in ("10.0.0.5", "192.168.1.20", "169.254.169.254", "127.0.0.1"):
            with pytest.raises(ForbiddenAddressError):
                await peers.post(f"https://{host}{path}", b"{}", "application/json")
    finally:
        await fetcher.close()


async def test_threat_an_origin_cannot_fork_a_version_a_host_holds(
        two: list[RunningNode]) -> None:
    """The origin signs a different version 2 for a host that already holds version 2."""
    origin, host = two
    await co_host(two)
    status, _ = await origin.request(
        "POST", f"/api/petitions/{SLUG}/versions", headers=origin.auth,
        json={"text": {"fr": "Texte deux.", "en": "Text two."}})
    assert status == 201

    async def host_has_version_2() -> bool:
        status, body = await host.request("GET", f"/api/petitions/{SLUG}")
        return status == 200 and body["version"] == 2

    await wait_for("the host to take version 2", host_has_version_2)
    assert origin.node is not None
    record = await origin.node.storage.petition_by_slug(SLUG)
    assert record is not None
    first = SignedDocument.decode(record.versions[0])
    second = PetitionVersion.decode(SignedDocument.decode(record.versions[1]).body)
    fork = dataclasses.replace(second, text={"fr": "Autre texte.", "en": "Other text."},
                               created=int(time.time()))
    forged = sign_petition(fork, origin.node.signer).encode()
    petition = json.loads(json.dumps(origin.federation.petition_object(
        await origin.node.petition(SLUG))))
    petition["fedpetition:versions"] = [acts.b64(first.encode()), acts.b64(forged)]
    body = json.dumps(acts.activity("Update", acts.new_activity_id(origin.url),
                                    origin.url + "/actor", petition)).encode()
    status, error = await post_inbox(host, body, signed_by(origin, host, body))
    assert (status, error["error"]) == (400, "invalid")
    assert "earlier versions changed" in error["message"]
    status, held = await host.request("GET", f"/api/petitions/{SLUG}")
    assert held["text"]["en"] == "Text two."  # the host keeps what it held
