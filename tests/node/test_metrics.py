"""Prometheus metrics at /metrics: real figures, no personal data."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.node.conftest import NodeHarness


async def scrape(h: NodeHarness) -> dict[str, float]:
    response = await h.client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await response.text()
    assert "@example.org" not in text and "/s/" not in text  # no addresses, no tokens
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}"] = sample.value
    return values


async def test_metrics_follow_the_signing_flow(harness: NodeHarness) -> None:
    h = harness
    await h.create_petition()
    before = await scrape(h)
    assert before["fedpetition_confirmations_total{}"] == 0
    for i in range(3):
        await h.confirm(await h.sign("clean-air", f"metric{i}@example.org"))
    await h.sequence()
    after = await scrape(h)
    assert after["fedpetition_confirmations_total{}"] == 3
    assert after["fedpetition_sequencer_batch_entries_count{}"] >= 1
    assert after["fedpetition_sequencer_batch_entries_sum{}"] == 3
    log = f"log={h.node.name}/log/{h.node.name}/clean-air"
    assert after[f"fedpetition_petition_signatures{{{log}}}"] == 3
    assert after["fedpetition_delivery_queue_depth{}"] == 0
    route = "method=POST,route=/api/signatures/{token}/confirm,status=200"
    assert after[f"fedpetition_http_requests_total{{{route}}}"] == 3
