"""The foundations of the wire contract: errors, wire times and bounded JSON parsing.

A node is not trusted, so no payload may cost the hub more than a bounded amount of work
or reach code that can raise anything but :class:`ContractError`. Parsing therefore
checks, in this order and before any object is built: the size of the raw bytes, that
they are UTF-8, and how deeply brackets nest (with a scan that never recurses, because
Python's json module raises ``RecursionError`` on deep input). The parser then refuses
``NaN``/``Infinity`` literals, numbers that overflow to infinity and integers too long to
be a count, so that no value reaching SQLite or arithmetic can be out of range.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any

from gateway.core import clock

CONTRACT_VERSION = 1

# Every message a node publishes (event envelope, status) is at most this long. A real
# event is a few hundred bytes; the bound only stops a node from filling the hub's disk
# or memory with one message.
MAX_NODE_MESSAGE_BYTES = 64 * 1024
# The types need two levels (envelope -> data, status -> session/job); one more is left
# for a field a newer node may add to an event type this hub does not know (those are
# stored as they are). Known types are checked field by field, so a nested value where
# the contract wants a scalar is still refused.
MAX_NODE_MESSAGE_DEPTH = 3
# Generous defaults for the other messages (signed snapshots are bounded by their own
# reader): deep enough for any of them, shallow enough never to reach Python's limit.
DEFAULT_MAX_DEPTH = 32
# SQLite integers are signed 64-bit.
SQLITE_INT_MAX = 2**63 - 1


class ContractError(ValueError):
    """A payload that does not follow the contract; the message says what is wrong."""


def parse_iso(value: Any, what: str = "time") -> datetime:
    """A wire time (see :func:`gateway.core.clock.parse_iso`); ContractError when bad."""
    return clock.parse_iso(value, what, error=ContractError)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def shorten(value: Any, limit: int = 60) -> str:
    """``repr`` of a value for an error message, cut so a huge payload never floods a log."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


_STRUCTURE = re.compile(r'[\[\]{}"\\]')


def nesting_exceeds(text: str, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than ``limit``.

    Iterative, and it only visits brackets, quotes and backslashes: a message with at
    most ``limit`` opening brackets (every real one) costs two ``str.count`` calls.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    in_string = False
    escaped_at = -2
    for m in _STRUCTURE.finditer(text):
        ch, at = m.group(), m.start()
        if in_string:
            if ch == "\\" and escaped_at != at - 1:
                escaped_at = at
            elif ch == '"' and escaped_at != at - 1:
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _reject_constant(name: str) -> Any:
    raise ContractError(f"{name} is not a number the contract accepts")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ContractError(f"{shorten(text)} is too large a number")
    return value


def loads_object(
    payload: bytes | str,
    what: str,
    *,
    max_bytes: int | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> dict[str, Any]:
    """A JSON object from a payload, within bounds; ContractError for anything else."""
    if isinstance(payload, str):
        text = payload
        size = len(payload.encode("utf-8", "surrogatepass"))
    else:
        size = len(payload)
        text = ""
    if max_bytes is not None and size > max_bytes:
        raise ContractError(f"{what}: {size} bytes, more than the {max_bytes} allowed")
    if not isinstance(payload, str):
        try:
            text = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ContractError(
                f"{what}: not valid UTF-8 ({exc.reason} at byte {exc.start})"
            ) from exc
    if nesting_exceeds(text, max_depth):
        raise ContractError(f"{what}: nested deeper than {max_depth} levels")
    try:
        # Integers need no hook: Python refuses more than 4300 digits, and every field
        # that takes one checks its range.
        obj = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except ContractError as exc:
        raise ContractError(f"{what}: {exc}") from exc
    except (ValueError, RecursionError) as exc:
        raise ContractError(f"{what}: not valid JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise ContractError(f"{what}: expected a JSON object, got {type(obj).__name__}")
    return obj
