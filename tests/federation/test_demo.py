"""``make run``: the local federation of nodes/ comes up, settles and verifies."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedpetition.node.config import load_config
from fedpetition.node.demo import run_demo
from tests.node.conftest import free_port

NODES = Path(__file__).resolve().parents[2] / "nodes"


def test_the_ready_configs_load_and_name_each_other() -> None:
    configs = [load_config(path) for path in sorted(NODES.glob("*.toml"))]
    assert [c.node.name for c in configs] == ["127.0.0.1:8441", "127.0.0.1:8442",
                                                "127.0.0.1:8443"]
    assert all(c.security.dev_allow_loopback for c in configs)
    assert set(configs[0].federation.accept_hosts) == {c.node.name for c in configs[1:]}
    assert len({c.node.data_dir for c in configs}) == 3


async def test_the_demo_federation_settles_and_verifies(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The ready configs, moved to free ports so that the test never meets a running demo.
    ports = {f"127.0.0.1:{port}": f"127.0.0.1:{free_port()}" for port in (8441, 8442, 8443)}
    paths = []
    for path in sorted(NODES.glob("*.toml")):
        text = path.read_text()
        for old, new in ports.items():
            text = text.replace(old, new)
        text = text.replace('data_dir = "../var/nodes/', f'data_dir = "{tmp_path}/')
        paths.append(tmp_path / path.name)
        paths[-1].write_text(text)
    # Eight signers, the eighth on two nodes: counted once.
    assert await run_demo(paths, 8, serve=False) == 8
    out = capsys.readouterr().out
    assert "every node shows the federated count: 8 signatures" in out
    assert "counted on two or more nodes, once: 1" in out
    assert "OK: all 22 steps passed" in out
    # Again: the same nodes and petition, eight more signers.
    assert await run_demo(paths, 8, serve=False) == 16
