"""The node's JSON API and published files, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import io
import time

from fedpetition.core.notes import open_checkpoint
from fedpetition.core.receipts import Receipt, check_consistency, verify_receipt
from fedpetition.core.verification import Verification
from fedpetition.verify.archive import ZipSource
from fedpetition.verify.http import latest_consistency, verify_live
from fedpetition.verify.render import report_to_json

from .conftest import NodeHarness


async def count(h: NodeHarness, slug: str = "clean-air") -> int:
    response = await h.client.get(f"/api/petitions/{slug}")
    assert response.status == 200
    value: int = (await response.json())["counts"]["total"]
    return value


async def test_organiser_creates_and_edits_a_petition(harness: NodeHarness) -> None:
    h = harness
    created = await h.create_petition()
    assert created["id"] == f"127.0.0.1:{h.port}/clean-air" and created["version"] == 1
    response = await h.client.post("/api/petitions", json={"slug": "x"})
    assert response.status == 401 and (await response.json())["error"] == "unauthorized"
    for bad in ({"slug": "Not A Slug"}, {"deadline": int(time.time()) - 10},
                {"title": {"fr": ""}}, {"languages": []}):
        response = await h.client.post("/api/petitions", headers=h.auth, json={
            **{"slug": "other", "languages": ["fr"], "title": {"fr": "T"}, "text": {"fr": "T"},
               "addressee": "A", "deadline": int(time.time()) + 100}, **bad})
        assert response.status == 400, bad
        assert "message" in await response.json()
    response = await h.client.post("/api/petitions", headers=h.auth, json={
        "slug": "clean-air", "languages": ["fr"], "title": {"fr": "T"}, "text": {"fr": "T"},
        "addressee": "A", "deadline": int(time.time()) + 100})
    assert response.status == 409

    token = await h.sign("clean-air", "ada@example.org")
    await h.confirm(token)
    response = await h.client.post("/api/petitions/clean-air/versions", headers=h.auth,
                                   json={"text": {"fr": "Texte corrigé.", "en": "Fixed text."}})
    assert response.status == 201
    edited = await response.json()
    assert edited["version"] == 2 and len(edited["versions"]) == 2
    await h.sequence()
    assert await count(h) == 1  # signed on version 1, counted under version 2 as well


async def test_sign_confirm_receipt_withdraw(harness: NodeHarness) -> None:
    h = harness
    await h.create_petition()
    token = await h.sign("clean-air", "Ada@Example.ORG")
    mail = h.mail.sent[-1]
    assert mail.to == "ada@example.org" and f"/s/{token}" in mail.text
    response = await h.client.get(f"/api/signatures/{token}/confirm")
    assert response.status == 405  # a GET never confirms
    assert (await (await h.client.get(f"/api/signatures/{token}")).json())["status"] == "pending"
    confirmed = await h.confirm(token)
    assert confirmed["status"] == "confirmed"
    response = await h.client.get(f"/api/signatures/{token}/receipt")
    assert response.status == 409 and response.headers["Retry-After"]
    await h.sequence()
    response = await h.client.get(f"/api/signatures/{token}/receipt")
    assert response.status == 200
    checked = verify_receipt(Receipt.decode(await response.read()))
    assert checked.record.email == "ada@example.org" and checked.entry.region == "FR-IDF"
    assert await count(h) == 1

    response = await h.client.post(f"/api/signatures/{token}/withdraw")
    assert (await response.json())["status"] == "withdrawing"
    await h.sequence()
    assert (await (await h.client.get(f"/api/signatures/{token}")).json())["status"] == \
        "withdrawn"
    assert await count(h) == 0


async def test_signing_twice_reveals_nothing_and_counts_once(harness: NodeHarness) -> None:
    h = harness
    await h.create_petition()
    first = await h.client.post("/api/petitions/clean-air/signatures",
                                json={"name": "Ada", "email": "ada@example.org"})
    await h.confirm(h.mail.last_token("ada@example.org"))
    await h.sequence()
    again = await h.client.post("/api/petitions/clean-air/signatures",
                                json={"name": "Someone", "email": "ADA@example.org"})
    other = await h.client.post("/api/petitions/clean-air/signatures",
                                json={"name": "Bob", "email": "bob@example.org"})
    assert first.status == again.status == other.status == 202
    assert await first.json() == await again.json() == await other.json()
    assert h.mail.sent[-2].subject.startswith(("Vous avez déjà signé", "You already signed"))
    await h.sequence()
    assert await count(h) == 1


async def test_bundle_and_live_verification_agree_with_the_node(harness: NodeHarness) -> None:
    h = harness
    await h.create_petition()
    tokens = [await h.sign("clean-air", f"signer{i}@example.org") for i in range(12)]
    for token in tokens:
        await h.confirm(token)
    await h.sequence()
    first = Receipt.decode(await (await h.client.get(
        f"/api/signatures/{tokens[0]}/receipt")).read())
    await h.client.post(f"/api/signatures/{tokens[3]}/withdraw")
    await h.sequence()

    data = await (await h.client.get("/petitions/clean-air/bundle.zip")).read()
    with ZipSource(io.BytesIO(data)) as source:
        # The origin's signed evaluation counts are in its bundle (no other host: none).
        assert f"127.0.0.1:{h.port}/petitions/clean-air/evaluations" in source.members()
        report = report_to_json(Verification(source).run())
    assert report["ok"] is True, report
    assert report["evaluations"]["status"] == "checked" and report["flags"] == []
    assert report["tally"]["total"] == 11 == await count(h)  # type: ignore[index]

    live = await asyncio.to_thread(verify_live, f"{h.url}/p/clean-air")
    assert live.ok and live.tally is not None and live.tally.total == 11

    # verify-receipt --online: the log grew since the receipt and still contains it.
    cp = verify_receipt(first).checkpoint
    latest, proof, _ = await asyncio.to_thread(latest_consistency, cp, first.log_key)
    assert latest.size == 13 and cp.size == 12
    check_consistency(cp, latest, proof)


async def test_closed_petition_refuses_signatures(harness: NodeHarness) -> None:
    h = harness
    await h.create_petition()
    pending = await h.sign("clean-air", "late@example.org")
    response = await h.client.post("/api/petitions/clean-air/close", headers=h.auth)
    assert response.status == 200 and (await response.json())["status"] == "closed"
    response = await h.client.post("/api/petitions/clean-air/signatures",
                                   json={"name": "Ada", "email": "ada@example.org"})
    assert response.status == 409 and (await response.json())["error"] == "closed"
    response = await h.client.post(f"/api/signatures/{pending}/confirm")
    assert response.status == 409


async def test_expired_link(harness: NodeHarness) -> None:
    h = harness
    await h.create_petition()
    token = await h.sign("clean-air", "slow@example.org")
    h.node.clock = lambda: time.time() + 73 * 3600
    response = await h.client.post(f"/api/signatures/{token}/confirm")
    assert response.status == 410 and (await response.json())["error"] == "expired"


async def test_bad_requests_get_4xx_json(harness: NodeHarness) -> None:
    h = harness
    await h.create_petition()
    cases = [
        ("post", "/api/petitions/clean-air/signatures", {"data": b"{", "headers": {
            "Content-Type": "application/json"}}, 400),
        ("post", "/api/petitions/clean-air/signatures", {"data": b"name=x"}, 415),
        ("post", "/api/petitions/clean-air/signatures", {"json": ["not", "an", "object"]}, 400),
        ("post", "/api/petitions/clean-air/signatures", {"json": {"name": "A", "email": "no"}},
         400),
        ("post", "/api/petitions/clean-air/signatures",
         {"json": {"name": "A\x00", "email": "a@example.org"}}, 400),
        ("post", "/api/petitions/clean-air/signatures",
         {"json": {"name": "A", "email": "a@example.org", "region": "France"}}, 400),
        ("post", "/api/petitions/clean-air/signatures",
         {"data": b"{" + b" " * 70_000 + b"}", "headers": {"Content-Type": "application/json"}},
         413),
        ("get", "/api/petitions/nope", {}, 404),
        ("get", "/api/signatures/not-a-token", {}, 404),
        ("get", "/petitions/clean-air/versions/0", {}, 404),
        ("get", "/petitions/clean-air/versions/01", {}, 404),
        ("get", f"/log/127.0.0.1:{h.port}/clean-air/tile/0/x999", {}, 404),
        ("get", "/log/elsewhere.example/clean-air/checkpoint", {}, 404),
        ("get", "/api/privacy/garbage", {}, 404),
    ]
    for method, path, kwargs, status in cases:
        response = await getattr(h.client, method)(path, **kwargs)
        assert response.status == status, (path, kwargs, await response.text())
        assert response.content_type == "application/json", path
        assert (await response.json())["error"]


async def test_rate_limit_per_ip(harness: NodeHarness) -> None:
    h = harness
    await h.create_petition()
    limit = h.node.config.limits.sign_per_ip_per_hour
    statuses = []
    for i in range(limit + 1):
        response = await h.client.post("/api/petitions/clean-air/signatures",
                                       json={"name": "A", "email": f"s{i}@example.org"})
        statuses.append(response.status)
    assert statuses[:limit] == [202] * limit
    assert statuses[-1] == 429 and int(response.headers["Retry-After"]) > 0


async def test_privacy_export_and_erasure(harness: NodeHarness) -> None:
    h = harness
    await h.create_petition()
    await h.create_petition("second")
    for slug in ("clean-air", "second"):
        await h.confirm(await h.sign(slug, "ada@example.org"))
    await h.sequence()
    response = await h.client.post("/api/privacy", json={"email": "ADA@example.org"})
    assert response.status == 202
    token = h.mail.last_token("ada@example.org")
    export = await (await h.client.get(f"/api/privacy/{token}")).json()
    assert {s["petition"].split("/")[1] for s in export["signatures"]} == {"clean-air",
                                                                          "second"}
    assert all(s["name"] == "Ada Lovelace" for s in export["signatures"])
    erased = await (await h.client.post(f"/api/privacy/{token}/erase")).json()
    assert erased == {"erased": 2}
    export = await (await h.client.get(f"/api/privacy/{token}")).json()
    assert export["signatures"] == []
    # The anonymous log is intact and still counts the signatures.
    assert await count(h) == 1 and await count(h, "second") == 1
    stored = await h.node.storage.log((await h.node.petition("clean-air")).record.id)
    assert stored is not None
    assert open_checkpoint(stored.checkpoint, h.node.signer.verifier_key()).checkpoint.size == 1


async def test_mail_server_down_is_a_503_and_signing_again_recovers(harness: NodeHarness
                                                                     ) -> None:
    from fedpetition.node.errors import MailError
    from fedpetition.node.mail import Mail

    h = harness
    await h.create_petition()
    sink = h.mail

    class Down:
        async def send(self, mail: Mail) -> None:
            raise MailError("connection refused")

        async def close(self) -> None:
            """Nothing to release."""

    h.node.mailer = Down()
    response = await h.client.post("/api/petitions/clean-air/signatures",
                                   json={"name": "Ada", "email": "ada@example.org"})
    assert response.status == 503 and response.headers["Retry-After"]
    assert (await response.json())["error"] == "mail_unavailable"
    h.node.mailer = sink
    token = await h.sign("clean-air", "ada@example.org")
    assert (await h.confirm(token))["status"] == "confirmed"


async def test_reserved_slug(harness: NodeHarness) -> None:
    response = await harness.client.post("/api/petitions", headers=harness.auth, json={
        "slug": "node", "languages": ["fr"], "title": {"fr": "T"}, "text": {"fr": "T"},
        "addressee": "A", "deadline": int(time.time()) + 100})
    assert response.status == 400 and (await response.json())["field"] == "slug"
