"""Aliases of one mailbox on one node (spec §4.6): one row, one nullifier, mail as typed."""

from __future__ import annotations

from fedpetition.core import nullifiers, voprf
from fedpetition.core.addresses import canonical_mailbox
from fedpetition.core.receipts import Receipt, verify_receipt
from fedpetition.node.keys import DataKey

from .conftest import NodeHarness


async def count(h: NodeHarness) -> int:
    response = await h.client.get("/api/petitions/clean-air")
    value: int = (await response.json())["counts"]["total"]
    return value


async def test_an_alias_cannot_sign_twice_and_mail_goes_as_typed(harness: NodeHarness) -> None:
    h = harness
    await h.create_petition()
    token = await h.sign("clean-air", "Ada.Lovelace@gmail.com")
    assert h.mail.sent[-1].to == "ada.lovelace@gmail.com"  # not the canonical mailbox
    await h.confirm(token)
    await h.sequence()
    assert await count(h) == 1

    response = await h.client.post("/api/petitions/clean-air/signatures", json={
        "name": "Ada", "email": "adalovelace+petitions@googlemail.com"})
    assert response.status == 202
    again = h.mail.sent[-1]
    assert again.to == "adalovelace+petitions@googlemail.com"  # as typed, normalised
    assert again.subject.startswith(("Vous avez déjà signé", "You already signed"))
    await h.sequence()
    assert await count(h) == 1

    # The entry's nullifier is the origin's VOPRF output on the canonical mailbox,
    # and the receipt's record keeps the address as the signer typed it.
    # (Signing again rotated the link: the one just mailed to the alias is current.)
    token = h.mail.last_token("adalovelace+petitions@googlemail.com")
    receipt = await h.client.get(f"/api/signatures/{token}/receipt")
    checked = verify_receipt(Receipt.decode(await receipt.read()))
    assert checked.record.email == "ada.lovelace@gmail.com"
    petition_id = checked.record.petition
    secret, _ = h.node.data_key.oprf_key_pair(petition_id)
    assert checked.entry.nullifier == nullifiers.nullifier(voprf.evaluate(
        secret, nullifiers.nullifier_input(petition_id, "adalovelace@gmail.com")))


async def test_privacy_export_through_an_alias_finds_the_mailbox(harness: NodeHarness) -> None:
    h = harness
    await h.create_petition()
    await h.confirm(await h.sign("clean-air", "ada+one@fastmail.com"))
    response = await h.client.post("/api/privacy", json={"email": "ada+two@fastmail.com"})
    assert response.status == 202
    link = h.mail.last_link("ada+two@fastmail.com")
    export = await (await h.client.get("/api" + link.split(h.url, 1)[1])).json()
    assert [s["email"] for s in export["signatures"]] == ["ada+one@fastmail.com"]


def test_email_index_is_keyed_on_the_canonical_mailbox() -> None:
    key = DataKey(bytes(range(32)))
    petition = "node-a.example/clean-air"
    mailbox = canonical_mailbox("a.b+x@googlemail.com")
    assert mailbox == "ab@gmail.com"
    assert key.email_index(petition, mailbox) == key.email_index(petition, "ab@gmail.com")
    for not_canonical in ("a.b@gmail.com", "ab@googlemail.com", "ab+x@proton.me"):
        try:
            key.email_index(petition, not_canonical)
        except ValueError as e:
            assert "canonical_mailbox" in str(e)
        else:
            raise AssertionError(f"{not_canonical} was accepted")
