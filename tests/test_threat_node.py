"""Claims of spec/threat-model.md that one node shows on its own, over its real HTTP API.

Each test names the mechanism it shows: entry times rounded to the hour by the
node (3.9), a privacy request that answers the same for any address (3.5), the
per-domain signing limit and the per-client confirmation limit (3.15), and the
verifier's bound on a checkpoint size the bundle cannot hold (3.15).
"""

from __future__ import annotations

import io
import time
from typing import Any

import pytest

from fedpetition.core import names
from fedpetition.core import verification as core_verification
from fedpetition.core.entries import TIME_GRANULARITY, coarse_time
from fedpetition.core.notes import Checkpoint
from fedpetition.core.verification import STEP_MEMBERS, Verification
from fedpetition.node.service import RateLimited, SignatureForm
from fedpetition.simulate import SimulationResult
from fedpetition.verify.archive import ZipSource
from fedpetition.verify.render import report_to_json
from tests.node.conftest import NodeHarness, harness  # noqa: F401  (the fixture)
from tests.test_threat_federation import published_signs

SLUG = "clean-air"


# --------------------------------------------------------------------------- timing (3.9)


async def test_threat_a_node_logs_the_hour_of_confirmation_not_the_second(
    harness: NodeHarness,  # noqa: F811
) -> None:
    """A signer confirming at 12 min 34 s past an hour gets an entry whose time is the
    start of that hour: the node itself rounds (Sequencer uses coarse_time, §4.2)."""
    h = harness
    created = await h.create_petition()
    token = await h.sign(SLUG, "ada@example.org")
    confirmed_at = coarse_time(int(time.time())) + TIME_GRANULARITY + 754  # hh:12:34
    real_clock = h.node.clock
    h.node.clock = lambda: float(confirmed_at)
    try:
        await h.confirm(token)
    finally:
        h.node.clock = real_clock
    await h.sequence()
    signs = await published_signs(names.log_origin(h.node.config.node.name, created["id"]))
    assert [entry.time for entry in signs] == [confirmed_at - 754]


# --------------------------------------------------------------------------- probing (3.5)


async def test_threat_the_privacy_request_answers_the_same_whether_or_not_the_address_signed(
    harness: NodeHarness,  # noqa: F811
) -> None:
    """Asking for the privacy export of an address that signed and of one that did not
    gives the same status, headers and body; the link goes to the mailbox in both cases."""
    h = harness
    await h.create_petition()
    await h.confirm(await h.sign(SLUG, "ada@example.org"))
    answers: list[tuple[int, dict[str, str], bytes]] = []
    for address in ("ada@example.org", "nobody@example.org"):
        sent = len(h.mail.sent)
        response = await h.client.post("/api/privacy", json={"email": address})
        headers = {k: v for k, v in response.headers.items() if k.lower() != "date"}
        answers.append((response.status, headers, await response.read()))
        assert [m.to for m in h.mail.sent[sent:]] == [address]
    assert answers[0] == answers[1]
    assert answers[0][0] == 202


# ---------------------------------------------------------------- denial of service (3.15)


async def test_threat_signing_is_limited_per_email_domain(
    harness: NodeHarness,  # noqa: F811
) -> None:
    """Signatures from many client addresses for one email domain stop at the domain's
    limit; another domain is not affected."""
    h = harness
    await h.create_petition()
    limit = h.node.config.limits.sign_per_email_domain_per_hour
    for i in range(limit):
        client = f"10.0.{i // 250}.{i % 250}"
        await h.node.sign(SLUG, SignatureForm("A", f"s{i}@flood.example"), client)
    with pytest.raises(RateLimited):
        await h.node.sign(SLUG, SignatureForm("A", "last@flood.example"), "10.9.9.9")
    await h.node.sign(SLUG, SignatureForm("A", "other@example.org"), "10.9.9.9")


async def test_threat_confirming_is_limited_per_client_address(
    harness: NodeHarness,  # noqa: F811
) -> None:
    """Confirmation attempts (e.g. guessed tokens) from one client stop at the limit,
    over HTTP, whatever the token; another client is not affected."""
    h = harness
    await h.create_petition()
    token = await h.sign(SLUG, "ada@example.org")
    limit = h.node.config.limits.confirm_per_ip_per_hour
    statuses = []
    for i in range(limit + 1):
        response = await h.client.post(f"/api/signatures/guess{i:020d}/confirm")
        statuses.append(response.status)
    assert 429 not in statuses[:limit]
    assert statuses[-1] == 429
    response = await h.client.post(f"/api/signatures/{token}/confirm")
    assert response.status == 429  # even a real token, from the same client
    await h.node.confirm(token, "10.1.2.3")  # another client still can


def test_threat_an_absurd_checkpoint_size_is_refused_before_listing_its_files(
    small_bundle: tuple[bytes, SimulationResult], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A log whose (validly signed) checkpoint claims 2**62 entries fails bundle-members
    at once, without listing the files such a log would need (Appendix C.12)."""
    data, _ = small_bundle
    real_open = core_verification.open_log_checkpoint
    inflated: list[str] = []

    def open_absurd(note: str, origin: str, *args: Any) -> Any:
        checkpoint, cosigners = real_open(note, origin, *args)
        if not inflated:
            inflated.append(origin)
            checkpoint = Checkpoint(checkpoint.origin, 2**62, checkpoint.root_hash)
        return checkpoint, cosigners

    listed: list[int] = []
    real_paths = core_verification.bundle.log_member_paths

    def spy(origin: str, size: int) -> Any:
        listed.append(size)
        return real_paths(origin, size)

    monkeypatch.setattr(core_verification, "open_log_checkpoint", open_absurd)
    monkeypatch.setattr(core_verification.bundle, "log_member_paths", spy)
    with ZipSource(io.BytesIO(data)) as source:
        report = report_to_json(Verification(source).run())  # type: ignore[arg-type]
    assert inflated and report["ok"] is False
    assert 2**62 not in listed
    steps = report["steps"]
    assert isinstance(steps, list)
    failed = [s for s in steps if s["status"] == "fail"]
    assert failed and STEP_MEMBERS in str(failed[0]) and "needs" in str(failed[0])
