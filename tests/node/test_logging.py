"""Structured logs: one JSON object per line when the config asks for them."""

from __future__ import annotations

import json
import logging

from fedpetition.node.server import JsonLogFormatter


def test_each_record_is_one_json_object_per_line() -> None:
    formatter = JsonLogFormatter()
    record = logging.LogRecord("fedpetition.federation", logging.WARNING, __file__, 1,
                               "peer %s marked unavailable", ("node-b.example",), None)
    line = formatter.format(record)
    assert "\n" not in line
    value = json.loads(line)
    assert value["level"] == "warning" and value["logger"] == "fedpetition.federation"
    assert value["message"] == "peer node-b.example marked unavailable"
    try:
        raise ValueError("broken")
    except ValueError:
        import sys

        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (),
                                   sys.exc_info())
    value = json.loads(formatter.format(failed))
    assert "ValueError: broken" in value["error"]
