"""Checking a bundle's chunks on every core (the core's ChunkRunner, in processes).

Worker processes are forked with the parent's open bundle (its member list is
read once) and run :func:`fedpetition.core.logcheck.check_chunk` on the chunks
they are given; the parent merges results in order. Results are identical to
a serial run.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager

from fedpetition.core.logcheck import (
    ChunkJob,
    ChunkResult,
    ChunkRunner,
    check_chunk,
    run_serially,
)
from fedpetition.verify.archive import ZipSource

_source: ZipSource | None = None


def _forked() -> None:
    assert _source is not None
    _source.after_fork()


def _check(job: ChunkJob) -> ChunkResult:
    assert _source is not None
    return check_chunk(_source, job)


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


@contextmanager
def zip_runner(source: ZipSource, workers: int) -> Iterator[ChunkRunner]:
    """A runner checking chunks of ``source`` (a bundle on disk) in ``workers`` processes."""
    global _source
    if "fork" not in multiprocessing.get_all_start_methods():
        yield run_serially(source)  # the workers share the parent's open bundle by forking
        return
    _source = source
    context = multiprocessing.get_context("fork")
    executor: Executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_forked)

    def runner(jobs: Iterable[ChunkJob]) -> Iterator[ChunkResult]:
        return executor.map(_check, jobs)

    try:
        yield runner
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
