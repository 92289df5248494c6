"""Signed requests between nodes: key fetch and cache, rotation, the signature window."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from fedpetition.core.notes import Signer
from fedpetition.federation import httpsig
from fedpetition.federation.documents import actor_document
from fedpetition.federation.fetch import Fetcher
from fedpetition.federation.peers import (
    MAX_AGE,
    MAX_SKEW,
    KeyUnavailableError,
    Peers,
    UnknownActorError,
)
from tests.node.conftest import free_port


@dataclass
class FakeNode:
    """A peer that serves its actor document and can rotate its key."""

    base: str
    name: str
    signer: Signer
    fetches: int = 0

    def rotate(self) -> None:
        self.signer = Signer.generate(self.name, secrets.token_bytes(32))


@pytest.fixture
async def peer() -> AsyncIterator[FakeNode]:
    port = free_port()
    name = f"127.0.0.1:{port}"
    node = FakeNode(f"http://{name}", name, Signer.generate(name, secrets.token_bytes(32)))

    async def actor(request: web.Request) -> web.Response:
        node.fetches += 1
        doc = actor_document(node.base, name, node.signer.public_key,
                             str(node.signer.verifier_key()))
        return web.json_response(doc, content_type="application/activity+json")

    app = web.Application()
    app.router.add_get("/actor", actor)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield node
    await runner.cleanup()


@pytest.fixture
async def peers() -> AsyncIterator[Peers]:
    fetcher = Fetcher(allow_loopback=True, user_agent="test")
    yield Peers(fetcher, Signer.generate("here.example", secrets.token_bytes(32)),
                "https://here.example")
    await fetcher.close()


def signed(node: FakeNode, body: bytes, created: int | None = None) -> dict[str, str]:
    now = int(time.time()) if created is None else created
    return httpsig.sign_request("POST", "https://here.example/inbox", {}, body,
                                key_id=f"{node.base}/actor#main-key", private_key=node.signer,
                                created=now, expires=now + 300)


async def test_keys_are_fetched_once_and_cached(peer: FakeNode, peers: Peers) -> None:
    for i in range(3):
        body = f"activity {i}".encode()
        actor = await peers.authenticate("POST", "https://here.example/inbox",
                                         signed(peer, body), body)
        assert actor.node_name == peer.name
    assert peer.fetches == 1


async def test_a_rotated_key_is_refetched_once(peer: FakeNode, peers: Peers) -> None:
    body = b"before"
    await peers.authenticate("POST", "https://here.example/inbox", signed(peer, body), body)
    peer.rotate()
    body = b"after"
    actor = await peers.authenticate("POST", "https://here.example/inbox", signed(peer, body),
                                     body)
    assert actor.public_key == peer.signer.public_key
    assert peer.fetches == 2
    # A signature by a key the actor never published still fails after the refetch.
    impostor = FakeNode(peer.base, peer.name, Signer.generate(peer.name, b"\x01" * 32))
    with pytest.raises(httpsig.BadSignatureError):
        await peers.authenticate("POST", "https://here.example/inbox", signed(impostor, body),
                                 body)
    assert peer.fetches == 3


@pytest.mark.parametrize(("offset", "error"), [
    (-(MAX_AGE + 5), httpsig.SignatureExpiredError),
    (MAX_SKEW + 5, httpsig.SignatureFromFutureError),
])
async def test_signatures_outside_the_window_are_refused(
        peer: FakeNode, peers: Peers, offset: int, error: type[Exception]) -> None:
    body = b"x"
    headers = signed(peer, body, created=int(time.time()) + offset)
    with pytest.raises(error):
        await peers.authenticate("POST", "https://here.example/inbox", headers, body)


async def test_a_signature_for_another_url_is_refused(peer: FakeNode, peers: Peers) -> None:
    body = b"x"
    with pytest.raises(httpsig.BadSignatureError):
        await peers.authenticate("POST", "https://elsewhere.example/inbox", signed(peer, body),
                                 body)


async def test_outgoing_gets_are_signed(peer: FakeNode, peers: Peers) -> None:
    headers = peers.sign("GET", peer.base + "/actor")
    assert headers["Signature-Input"].startswith('sig1=("@method" "@target-uri")')
    assert "keyid=\"https://here.example/actor#main-key\"" in headers["Signature-Input"]


async def test_a_key_elsewhere_than_a_node_actor_is_refused(peer: FakeNode, peers: Peers) -> None:
    """Whoever controls another path on a node's host must not speak for the node."""
    body = b"x"
    now = int(time.time())
    headers = httpsig.sign_request("POST", "https://here.example/inbox", {}, body,
                                   key_id=f"{peer.base}/uploads/actor.json#main-key",
                                   private_key=peer.signer, created=now)
    with pytest.raises(UnknownActorError, match="not a node actor"):
        await peers.authenticate("POST", "https://here.example/inbox", headers, body)
    assert peer.fetches == 0


async def test_a_node_that_does_not_answer_is_told_to_retry(peers: Peers) -> None:
    """The signer's node is not up (yet): 503, so its delivery is retried, not dropped."""
    body = b"x"
    name = f"127.0.0.1:{free_port()}"
    signer = Signer.generate(name, secrets.token_bytes(32))
    headers = httpsig.sign_request("POST", "https://here.example/inbox", {}, body,
                                   key_id=f"http://{name}/actor#main-key", private_key=signer,
                                   created=int(time.time()))
    with pytest.raises(KeyUnavailableError) as info:
        await peers.authenticate("POST", "https://here.example/inbox", headers, body)
    assert info.value.status == 503
