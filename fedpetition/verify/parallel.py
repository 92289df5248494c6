"""Checking a bundle's chunks on every core (the core's ChunkRunner, in processes).

Each worker process opens the bundle file once and runs
:func:`fedpetition.core.logcheck.check_chunk` on the chunks it is given; the
parent merges results in order. Results are identical to a serial run.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager

from fedpetition.core.logcheck import ChunkJob, ChunkResult, ChunkRunner, check_chunk
from fedpetition.verify.archive import ZipSource

_source: ZipSource | None = None


def _open(path: str) -> None:
    global _source
    _source = ZipSource(path)


def _check(job: ChunkJob) -> ChunkResult:
    assert _source is not None
    return check_chunk(_source, job)


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


@contextmanager
def zip_runner(path: str, workers: int) -> Iterator[ChunkRunner]:
    """A runner checking chunks of the bundle at ``path`` in ``workers`` processes."""
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    executor: Executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_open,
                                             initargs=(path,))

    def runner(jobs: Iterable[ChunkJob]) -> Iterator[ChunkResult]:
        return executor.map(_check, jobs)

    try:
        yield runner
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
