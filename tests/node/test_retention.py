"""Housekeeping with a fake clock: expiry of pending signatures, deadlines, retention.

``node.housekeeping()`` deletes pending signatures whose link expired, closes
petitions past their deadline, and erases the personal data of signatures on
petitions closed more than ``[retention] days_after_close`` days ago, while the
anonymous log and its count stay exactly as they were.
"""

from __future__ import annotations

import io
import time

from fedpetition.core.verification import Verification
from fedpetition.verify.archive import ZipSource

from .conftest import NodeHarness

HOUR, DAY = 3600, 86400


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


def use_clock(h: NodeHarness) -> Clock:
    clock = Clock()
    h.node.clock = clock
    h.node.sequencer.clock = clock
    return clock


async def status(h: NodeHarness, token: str) -> str | None:
    """The signature's status, or None once its row is gone (404)."""
    response = await h.client.get(f"/api/signatures/{token}")
    if response.status == 404:
        assert (await response.json())["error"] == "not_found"
        return None
    assert response.status == 200, await response.text()
    value: str = (await response.json())["status"]
    return value


async def petition(h: NodeHarness, slug: str) -> dict[str, object]:
    response = await h.client.get(f"/api/petitions/{slug}")
    assert response.status == 200
    value: dict[str, object] = await response.json()
    return value


async def bundle_total(h: NodeHarness, slug: str) -> tuple[int, bytes]:
    """The verified total of the petition's bundle, and its checkpoint."""
    response = await h.client.get(f"/petitions/{slug}/bundle.zip")
    assert response.status == 200
    with ZipSource(io.BytesIO(await response.read())) as source:
        report = Verification(source).run()
    assert report.ok, [(s.step, s.detail) for s in report.failures]
    assert report.tally is not None
    checkpoint = await (await h.client.get(f"/log/127.0.0.1:{h.port}/{slug}/checkpoint")).read()
    return report.tally.total, checkpoint


async def test_expired_pending_signatures_are_deleted(harness: NodeHarness) -> None:
    h = harness
    clock = use_clock(h)
    expiry = h.node.config.limits.pending_expiry_hours * HOUR
    await h.create_petition(deadline=int(clock.now) + 30 * DAY)
    late = await h.sign("clean-air", "late@example.org")
    counted = await h.sign("clean-air", "counted@example.org")
    await h.confirm(counted)
    await h.sequence()
    clock.now += HOUR
    newer = await h.sign("clean-air", "newer@example.org")  # an hour younger

    clock.now += expiry - HOUR - 1  # one second before the first links expire
    await h.node.housekeeping()
    assert await status(h, late) == "pending" and await status(h, newer) == "pending"

    clock.now += 1  # late's link expires now
    await h.node.housekeeping()
    assert await status(h, late) is None
    assert await status(h, newer) == "pending"
    assert await status(h, counted) == "counted"  # confirmed signatures never expire
    response = await h.client.post(f"/api/signatures/{late}/confirm")
    assert response.status == 404

    clock.now += HOUR
    await h.node.housekeeping()
    assert await status(h, newer) is None
    assert (await petition(h, "clean-air"))["count"] == 1
    # The address may sign again: a new pending signature, a new link.
    again = await h.sign("clean-air", "late@example.org")
    assert again != late and await status(h, again) == "pending"


async def test_petitions_past_their_deadline_are_closed(harness: NodeHarness) -> None:
    h = harness
    clock = use_clock(h)
    deadline = int(clock.now) + DAY  # before the pending link expires
    await h.create_petition(deadline=deadline)
    await h.create_petition("later", deadline=deadline + DAY)
    pending = await h.sign("clean-air", "pending@example.org")
    counted = await h.sign("clean-air", "counted@example.org")
    await h.confirm(counted)
    await h.sequence()

    clock.now = deadline - 1
    await h.node.housekeeping()
    assert (await petition(h, "clean-air"))["status"] == "open"
    record = await h.node.storage.petition_by_slug("clean-air")
    assert record is not None and record.status == "open"

    clock.now = deadline
    await h.node.housekeeping()
    assert (await petition(h, "clean-air"))["status"] == "closed"
    assert (await petition(h, "later"))["status"] == "open"
    record = await h.node.storage.petition_by_slug("clean-air")
    assert record is not None and record.status == "closed" and record.closed_at == deadline
    response = await h.client.post(
        "/api/petitions/clean-air/signatures",
        json={"name": "Too Late", "email": "late@example.org"},
    )
    assert response.status == 409 and (await response.json())["error"] == "closed"
    response = await h.client.post(f"/api/signatures/{pending}/confirm")
    assert response.status == 409 and (await response.json())["error"] == "closed"
    assert await status(h, counted) == "counted"
    assert (await petition(h, "clean-air"))["count"] == 1

    clock.now += 5 * DAY  # housekeeping again: closing is done once, closed_at kept
    await h.node.housekeeping()
    record = await h.node.storage.petition_by_slug("clean-air")
    assert record is not None and record.closed_at == deadline


async def test_personal_data_is_purged_after_retention_and_the_log_stays(
    harness: NodeHarness,
) -> None:
    h = harness
    clock = use_clock(h)
    days = h.node.config.retention.days_after_close
    deadline = int(clock.now) + 10 * DAY
    await h.create_petition(deadline=deadline)
    await h.create_petition("open-one", deadline=deadline + 365 * DAY)
    counted = [await h.sign("clean-air", f"signer{i}@example.org") for i in range(5)]
    for token in counted:
        await h.confirm(token)
    await h.sequence()
    withdrawn = counted.pop()
    await h.client.post(f"/api/signatures/{withdrawn}/withdraw")
    await h.sequence()
    pending = await h.sign("clean-air", "pending@example.org")
    elsewhere = await h.sign("open-one", "signer0@example.org")
    await h.confirm(elsewhere)
    # Confirmed just before the deadline, sequenced only after the purge time.
    clock.now = deadline - 2
    queued = await h.sign("clean-air", "queued@example.org")
    clock.now += 1
    await h.confirm(queued)

    clock.now = deadline
    await h.node.housekeeping()  # closes clean-air at its deadline
    before, checkpoint = await bundle_total(h, "clean-air")
    assert before == 4 == (await petition(h, "clean-air"))["count"]

    clock.now = deadline + days * DAY  # not "more than" days_after_close yet
    await h.node.housekeeping()
    for token in counted:
        assert await status(h, token) == "counted"
    assert await status(h, withdrawn) == "withdrawn"
    assert await status(h, queued) == "confirmed"

    clock.now += 1
    await h.node.housekeeping()
    for token in [*counted, withdrawn]:
        assert await status(h, token) is None, "personal data outlived the retention period"
        response = await h.client.get(f"/api/signatures/{token}/receipt")
        assert response.status == 404
    # Pending rows expired long ago; the queued one waits for the log, then goes too.
    assert await status(h, pending) is None
    assert await status(h, queued) == "confirmed"
    assert await status(h, elsewhere) == "confirmed"  # another, open petition: kept
    await h.sequence()
    assert await status(h, queued) == "counted" and await status(h, elsewhere) == "counted"
    after_queue, _ = await bundle_total(h, "clean-air")
    assert after_queue == before + 1
    await h.node.housekeeping()
    assert await status(h, queued) is None
    assert await status(h, elsewhere) == "counted"

    # Nothing left to export for the purged signers; the other petition still has theirs.
    await h.client.post("/api/privacy", json={"email": "signer0@example.org"})
    token = h.mail.last_token("signer0@example.org")
    export = await (await h.client.get(f"/api/privacy/{token}")).json()
    assert [s["petition"].split("/")[1] for s in export["signatures"]] == ["open-one"]
    await h.client.post("/api/privacy", json={"email": "signer1@example.org"})
    token = h.mail.last_token("signer1@example.org")
    assert (await (await h.client.get(f"/api/privacy/{token}")).json())["signatures"] == []

    # The anonymous log is untouched: same count, a bundle that verifies.
    total, latest = await bundle_total(h, "clean-air")
    assert total == after_queue == (await petition(h, "clean-air"))["count"]
    assert latest != checkpoint  # it grew by the queued entry, and only by it
    record = await h.node.storage.petition_by_slug("clean-air")
    assert record is not None
    stored = await h.node.storage.log(record.id)
    assert stored is not None and stored.size == 7  # 6 signs and 1 withdrawal
