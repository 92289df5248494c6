"""Canonical MessagePack (spec §1): exactly one encoding per value.

Everything that is hashed or signed is encoded here and nowhere else. The subset
is: nil, booleans, integers in -2**63 .. 2**64-1, UTF-8 strings, byte strings,
arrays and maps whose keys are strings. Each value takes its shortest form, map
keys are sorted by their UTF-8 bytes with no duplicates, and there are no floats,
no extension types and no trailing bytes.

Decoding checks canonicity by re-encoding: a byte string is canonical exactly
when ``encode(decode(b)) == b``. Combined with a type walk that refuses floats and
extension values, this accepts one encoding per value and rejects the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgpack

from .errors import DecodeError, LocalProtocolError

MAX_DEPTH = 32  # spec §1.4: deeper nesting is rejected
MIN_INT = -(2**63)
MAX_INT = 2**64 - 1

_packer_options: dict[str, Any] = {"use_bin_type": True, "strict_types": True}


def _normalise(value: object, depth: int) -> object:
    """Return ``value`` with maps in canonical key order, checking every type."""
    if depth > MAX_DEPTH:
        raise LocalProtocolError(f"value nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | str | bytes):
        return value
    if isinstance(value, int):
        if not MIN_INT <= value <= MAX_INT:
            raise LocalProtocolError(f"integer {value} is outside the encodable range")
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise LocalProtocolError(f"map key {key!r} is not a string")
            items.append((key.encode("utf-8"), key, _normalise(item, depth + 1)))
        items.sort(key=lambda kv: kv[0])
        return {key: item for _, key, item in items}
    if isinstance(value, list | tuple):
        return [_normalise(item, depth + 1) for item in value]
    raise LocalProtocolError(f"{type(value).__name__} values cannot be encoded")


def encode(value: object) -> bytes:
    """Encode ``value`` canonically (spec §1)."""
    normalised = _normalise(value, 0)
    try:
        return bytes(msgpack.packb(normalised, **_packer_options))
    except (TypeError, ValueError, OverflowError) as e:  # pragma: no cover - guarded above
        raise LocalProtocolError(f"cannot encode value: {e}") from e


def _check_decoded(value: object, depth: int) -> None:
    """Refuse what msgpack can decode but the canonical subset excludes."""
    if depth > MAX_DEPTH:
        raise DecodeError(f"value nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | int | str | bytes):
        return
    if isinstance(value, dict):
        previous: bytes | None = None
        for key, item in value.items():
            if not isinstance(key, str):
                raise DecodeError("map key is not a string")
            raw = key.encode("utf-8")
            if previous is not None and raw <= previous:
                raise DecodeError(f"map keys are not in canonical order at {key!r}")
            previous = raw
            _check_decoded(item, depth + 1)
        return
    if isinstance(value, list):
        for item in value:
            _check_decoded(item, depth + 1)
        return
    if isinstance(value, float):
        raise DecodeError("floats are not allowed")
    raise DecodeError(f"{type(value).__name__} values are not allowed")


def _ext_hook(code: int, data: bytes) -> object:
    raise DecodeError(f"extension type {code} is not allowed")


def decode(data: bytes) -> Any:
    """Decode canonical MessagePack, rejecting every other encoding (spec §1.3)."""
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=False,
            use_list=True,
            ext_hook=_ext_hook,
        )
    except DecodeError:
        raise
    except (ValueError, TypeError, UnicodeDecodeError, msgpack.UnpackException) as e:
        raise DecodeError(f"not valid MessagePack: {e}") from e
    except RecursionError as e:
        raise DecodeError("value nested too deeply") from e
    _check_decoded(value, 0)
    if bytes(msgpack.packb(value, **_packer_options)) != bytes(data):
        raise DecodeError("MessagePack is not in canonical form")
    return value


def decode_map(data: bytes, what: str) -> dict[str, Any]:
    """Decode canonical MessagePack that must be a map (most protocol objects)."""
    value = decode(data)
    if not isinstance(value, dict):
        raise DecodeError(f"{what} must be a map")
    return value
