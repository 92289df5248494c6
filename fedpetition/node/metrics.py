"""The node's Prometheus metrics, served at ``/metrics`` (prometheus-client).

One registry per node, not the library's global one, so that several nodes in
one process (tests, ``make run``) keep their figures apart. A node served by
several worker processes (``serve --workers``) runs prometheus-client in its
multiprocess mode: each worker writes its counters to a file in a folder the
parent made, and whichever worker answers a scrape sums them all. Counters and
histograms are updated where things happen; the figures that live in storage or
in the sequencer (queue depth, per-petition counts) are read when scraped.
Nothing here holds personal data: labels are routes, methods, statuses and
petition ids.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from fedpetition.node.service import Node

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_multiprocess(folder: str) -> None:
    """In a worker process, before its node is built: keep this process's counters in
    ``folder``, shared with the other workers (prometheus-client's multiprocess mode)."""
    os.environ[MULTIPROCESS_ENV] = folder
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


class Metrics:
    """What a node counts about itself."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "fedpetition_http_requests", "HTTP requests answered, by route and status",
            ["method", "route", "status"], registry=self.registry)
        self.confirmations = Counter(
            "fedpetition_confirmations", "Signatures confirmed by their signers",
            registry=self.registry)
        self.batch_entries = Histogram(
            "fedpetition_sequencer_batch_entries", "Entries appended per sequenced batch",
            buckets=BATCH_BUCKETS, registry=self.registry)
        self.batch_seconds = Histogram(
            "fedpetition_sequencer_batch_seconds",
            "Time to build, sign and durably commit one batch", registry=self.registry)
        self.delivery_failures = Counter(
            "fedpetition_delivery_failures", "Delivery attempts that failed",
            registry=self.registry)
        self._scraped = _ScrapedFigures()
        self.registry.register(self._scraped)
        folder = os.environ.get(MULTIPROCESS_ENV)
        if folder:  # scrapes sum every worker's counters, read from their files
            self.exposed = CollectorRegistry()
            MultiProcessCollector(self.exposed, folder)  # type: ignore[no-untyped-call]
            self.exposed.register(self._scraped)
        else:
            self.exposed = self.registry

    async def render(self, node: Node) -> bytes:
        """The exposition text, with the figures read from storage and the logs now."""
        self._scraped.queue_depth = await node.storage.pending_deliveries()
        self._scraped.counts = {
            current.origin: current.stats.count for current in node.sequencer.logs.values()}
        return generate_latest(self.exposed)


class _ScrapedFigures(Collector):
    """Figures kept elsewhere, copied in just before each scrape."""

    def __init__(self) -> None:
        self.queue_depth = 0
        self.counts: dict[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("fedpetition_delivery_queue_depth",
                                  "Activities waiting in the delivery queue")
        depth.add_metric([], self.queue_depth)
        yield depth
        counts = GaugeMetricFamily("fedpetition_petition_signatures",
                                   "Signatures counted in this node's log, by log",
                                   labels=["log"])
        for origin, count in sorted(self.counts.items()):
            counts.add_metric([origin], count)
        yield counts


__all__ = ["CONTENT_TYPE", "Metrics"]
