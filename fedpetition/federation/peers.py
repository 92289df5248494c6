"""Talking to other nodes: signed requests out, verified requests in.

Every request a node sends to another, GET included, carries an RFC 9421
signature (Ed25519, key ``<base>/actor#main-key``) covering ``@method``,
``@target-uri`` and, with a body, the RFC 9530 ``Content-Digest``; ``created``
is now and ``expires`` :data:`SIGNATURE_LIFETIME` later. All of it goes through
the SSRF-guarded :class:`~fedpetition.federation.fetch.Fetcher`.

An incoming signed request is verified against its signer's actor document:
the ``keyid`` names the key, its URL without fragment names the actor, which is
fetched (through the same guarded fetcher) and cached for :data:`ACTOR_TTL`. If
the signature does not verify with the cached key, the actor is fetched once
more before the request is refused: that is how a peer's key rotation reaches
us. The signature must be recent: ``created`` at most :data:`MAX_SKEW` seconds
ahead of our clock and at most :data:`MAX_AGE` behind it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from fedpetition.core.errors import DecodeError, FedPetitionError, RemoteProtocolError
from fedpetition.core.names import check_node_name
from fedpetition.core.notes import Signer

from . import httpsig
from .documents import Actor, parse_actor
from .fetch import Fetched, Fetcher, FetchError, forbidden_reason

__all__ = [
    "ACTOR_TTL",
    "MAX_AGE",
    "MAX_SKEW",
    "SIGNATURE_LIFETIME",
    "KeyUnavailableError",
    "Peers",
    "UnknownActorError",
]

SIGNATURE_LIFETIME = 300
MAX_SKEW = 60  # seconds a peer's clock may run ahead of ours
MAX_AGE = 600  # seconds a signature stays acceptable after its creation
ACTOR_TTL = 86400
ACTIVITY_JSON = "application/activity+json"


class UnknownActorError(RemoteProtocolError):
    """The signing key's actor could not be fetched or is not a node (401)."""

    status = 401


class KeyUnavailableError(RemoteProtocolError):
    """The signing key's node did not answer when its actor was fetched (503: retry)."""

    status = 503


def _is_loopback_name(name: str) -> bool:
    host = name[1:].split("]", 1)[0] if name.startswith("[") else name.rsplit(":", 1)[0]
    return host == "localhost" or forbidden_reason(host) == "loopback"


class Peers:
    """This node's signed client, and its cache of other nodes' actors."""

    def __init__(self, fetcher: Fetcher, signer: Signer, base_url: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.fetcher = fetcher
        self.signer = signer
        self.base_url = base_url
        self.actor_id = f"{base_url}/actor"
        self.key_id = f"{self.actor_id}#main-key"
        self.clock = clock
        self._actors: dict[str, tuple[Actor, float]] = {}
        self._fetching: dict[str, asyncio.Future[Actor]] = {}

    def base_of(self, node_name: str) -> str:
        """A node's base URL: https, or http for a loopback node when loopback is allowed."""
        check_node_name(node_name)
        if self.fetcher.allow_loopback and _is_loopback_name(node_name):
            return f"http://{node_name}"
        return f"https://{node_name}"

    def actor_of(self, node_name: str) -> str:
        return f"{self.base_of(node_name)}/actor"

    # -- outbound -------------------------------------------------------------
    def sign(self, method: str, url: str, body: bytes | None = None,
             content_type: str | None = None) -> dict[str, str]:
        headers = {"Content-Type": content_type} if content_type else {}
        now = int(self.clock())
        # A nonce makes every signature unique, so that a receiver can refuse a captured
        # request by its signature without refusing a legitimate repeat.
        headers.update(httpsig.sign_request(
            method, url, headers, body, key_id=self.key_id, private_key=self.signer,
            created=now, expires=now + SIGNATURE_LIFETIME, nonce=secrets.token_urlsafe(16)))
        return headers

    async def get(self, url: str, accept: str = "*/*") -> Fetched:
        return await self.fetcher.get(url, accept=accept, headers=self.sign("GET", url))

    async def get_activity(self, url: str) -> dict[str, Any]:
        return await self.fetcher.get_activity(url, headers=self.sign("GET", url))

    async def post(self, url: str, body: bytes, content_type: str = ACTIVITY_JSON) -> Fetched:
        return await self.fetcher.post(url, body, self.sign("POST", url, body, content_type))

    async def post_activity(self, url: str, body: bytes) -> None:
        """The delivery queue's sender: any 2xx is success, anything else raises."""
        await self.post(url, body)

    # -- actors ---------------------------------------------------------------
    async def actor(self, actor_url: str, *, refresh: bool = False) -> Actor:
        """A node's actor document, checked (parse_actor) and cached."""
        cached = self._actors.get(actor_url)
        if cached is not None and not refresh and self.clock() - cached[1] < ACTOR_TTL:
            return cached[0]
        pending = self._fetching.get(actor_url)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Actor] = asyncio.get_running_loop().create_future()
        self._fetching[actor_url] = future
        try:
            doc = await self.get_activity(actor_url)
            actor = parse_actor(doc, actor_url)
            self._actors[actor_url] = (actor, self.clock())
            future.set_result(actor)
            return actor
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._fetching[actor_url]

    async def node_actor(self, node_name: str, *, refresh: bool = False) -> Actor:
        actor = await self.actor(self.actor_of(node_name), refresh=refresh)
        if actor.node_name != node_name.lower():
            raise DecodeError(f"the actor of {node_name} names itself {actor.node_name}")
        return actor

    # -- inbound --------------------------------------------------------------
    async def authenticate(self, method: str, url: str, headers: Mapping[str, str],
                           body: bytes | None) -> Actor:
        """The actor that signed this request; raises an HttpSignatureError (401) if none."""
        return (await self.authenticate_request(method, url, headers, body))[0]

    async def authenticate_request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[Actor, httpsig.VerifiedRequest]:
        """:meth:`authenticate`, also returning what the signature vouches for (its nonce)."""
        key_id = httpsig.signature_key_id(headers)
        actor_url = key_id.split("#", 1)[0]
        actor = await self._signing_actor(actor_url, key_id)
        try:
            verified = self._verify(method, url, headers, body, actor)
        except (httpsig.BadSignatureError, httpsig.UnknownKeyError) as first:
            # Perhaps the peer rotated its key: look once more before refusing.
            try:
                actor = await self.actor(actor_url, refresh=True)
            except RemoteProtocolError:
                raise first from None
            verified = self._verify(method, url, headers, body, actor)
        return actor, verified

    async def _signing_actor(self, actor_url: str, key_id: str) -> Actor:
        """The node actor of a key, which must be ``<base of its node name>/actor``.

        Anything else on a node's host (a user's upload, another application) could
        otherwise speak for the node.
        """
        try:
            check_node_name(urlsplit(actor_url).netloc.lower())
            if actor_url != self.actor_of(urlsplit(actor_url).netloc.lower()):
                raise UnknownActorError(f"key {key_id[:200]!r} is not a node actor's "
                                        "(<base>/actor)")
        except (ValueError, FedPetitionError) as e:
            if isinstance(e, UnknownActorError):
                raise
            raise UnknownActorError(f"key {key_id[:200]!r} is not a node actor's: {e}"
                                    ) from None
        try:
            return await self.actor(actor_url)
        except FetchError as e:
            if type(e) is FetchError and (e.remote_status is None or e.remote_status >= 500):
                # The signer's node did not answer (yet): say so, so it retries later.
                raise KeyUnavailableError(
                    f"cannot fetch the actor of key {key_id[:200]!r} now: {e}") from e
            raise UnknownActorError(f"cannot fetch the actor of key {key_id[:200]!r}: {e}"
                                    ) from e
        except RemoteProtocolError as e:
            raise UnknownActorError(f"the actor of key {key_id[:200]!r} is not valid: {e}"
                                    ) from e

    def _verify(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                actor: Actor) -> httpsig.VerifiedRequest:
        def resolve(wanted: str) -> bytes:
            if wanted not in (actor.public_key_id, actor.multikey_id):
                raise KeyError("the actor document has no key of that id")
            return actor.public_key

        return httpsig.verify_request(method, url, headers, body, resolve_key=resolve,
                                      now=int(self.clock()), max_skew=MAX_SKEW,
                                      max_age=MAX_AGE)
