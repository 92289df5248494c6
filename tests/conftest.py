"""Shared fixtures: small simulated federations written as real bundle files."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from fedpetition.simulate import SimulationResult, SimulationSpec, simulate
from fedpetition.verify.archive import ZipBundleWriter

Build = Callable[..., tuple[bytes, SimulationResult]]


def build_bundle(nodes: int = 3, signatures: int = 700, duplicates: int = 40,
                 withdrawals: int = 25, seed: int = 11) -> tuple[bytes, SimulationResult]:
    buffer = io.BytesIO()
    with ZipBundleWriter(buffer) as writer:
        result = simulate(SimulationSpec(nodes, signatures, duplicates, withdrawals, seed),
                          writer.add)
    return buffer.getvalue(), result


@pytest.fixture(scope="session")
def small_bundle() -> tuple[bytes, SimulationResult]:
    """3 nodes, 700 sign entries (40 duplicated signers, 25 withdrawals): tiles of
    every kind, full and partial, and a receipt."""
    return build_bundle()


@pytest.fixture
def bundle_file(tmp_path: Path, small_bundle: tuple[bytes, SimulationResult]) -> Path:
    path = tmp_path / "federation.zip"
    path.write_bytes(small_bundle[0])
    return path
