"""Field rules of the typed messages: one small spec per kind of value, with its bounds.

A message type is a frozen, keyword-only dataclass whose fields carry a :class:`Spec` in
their metadata (``wire(...)``). :func:`decode_fields` checks a JSON object against them
and names the first field that is wrong, with what was expected; :func:`encode_fields`
gives the JSON object back. ``describe()`` is the text ``docs/mqtt.md`` shows for the
field, and a test compares the two, so the documentation cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from gateway.contract.core import SQLITE_INT_MAX, ContractError, parse_iso, shorten
from gateway.core.clock import iso
from gateway.core.ids import normalise_uid

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_TOKEN = re.compile(r"[a-z][a-z0-9._-]{0,63}")


def _printable(value: str) -> bool:
    """No NUL and no lone surrogate: both would fail or corrupt on the way into SQLite."""
    if "\0" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Spec:
    """How one field looks on the wire. ``check`` returns the Python value."""

    def check(self, value: Any) -> Any:
        raise NotImplementedError

    def encode(self, value: Any) -> Any:
        return value

    def describe(self) -> str:
        raise NotImplementedError

    def _fail(self, value: Any) -> ContractError:
        return ContractError(f"should be {self.describe()}, got {shorten(value)}")


class Id(Spec):
    """Member, machine, node, session, job and event ids: what ``config`` calls an id."""

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or not _ID.fullmatch(value):
            raise self._fail(value)
        return value

    def describe(self) -> str:
        return "id"


class Token(Spec):
    """A lower-case word: event types and states a newer node may add."""

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or not _TOKEN.fullmatch(value):
            raise self._fail(value)
        return value

    def describe(self) -> str:
        return "word"


@dataclass(frozen=True)
class Text(Spec):
    max_len: int = 256

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or len(value) > self.max_len or not _printable(value):
            raise self._fail(value)
        return value

    def describe(self) -> str:
        return f"text of at most {self.max_len} characters"


class Uid(Spec):
    """A badge UID, canonicalised (upper-case hex, no separators)."""

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or len(value) > 64:
            raise self._fail(value)
        try:
            return normalise_uid(value)
        except ValueError as exc:
            raise self._fail(value) from exc

    def describe(self) -> str:
        return "badge uid"


class Time(Spec):
    def check(self, value: Any) -> datetime:
        try:
            return parse_iso(value, "time")
        except ContractError as exc:
            detail = str(exc).removeprefix("time: ")
            raise ContractError(f"should be {self.describe()}: {detail}") from exc

    def encode(self, value: datetime) -> str:
        return iso(value)

    def describe(self) -> str:
        return "a UTC ISO 8601 time"


class Flag(Spec):
    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self._fail(value)
        return value

    def describe(self) -> str:
        return "true or false"


def _number_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


@dataclass(frozen=True)
class Number(Spec):
    """A finite number in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``), as a float."""

    lo: float
    hi: float
    lo_open: bool = False

    def check(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(value)
        if isinstance(value, int) and abs(value) > SQLITE_INT_MAX:
            raise self._fail(value)
        x = float(value)
        low_ok = x > self.lo if self.lo_open else x >= self.lo
        if not math.isfinite(x) or not low_ok or x > self.hi:
            raise self._fail(value)
        return x

    def describe(self) -> str:
        lo, hi = _number_text(self.lo), _number_text(self.hi)
        if self.lo_open:
            return f"number above {lo}, at most {hi}"
        return f"number from {lo} to {hi}"


@dataclass(frozen=True)
class Integer(Spec):
    lo: int = 0
    hi: int = SQLITE_INT_MAX

    def check(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not self.lo <= value <= self.hi:
            raise self._fail(value)
        return value

    def describe(self) -> str:
        if self.lo == self.hi:
            return f"the integer {self.lo}"
        if self.hi == SQLITE_INT_MAX:
            return f"integer from {self.lo}"
        return f"integer from {self.lo} to {self.hi}"


class OneOf(Spec):
    """A closed set of words; ``values`` may be a callable so a set defined elsewhere
    (the access policy's reasons) is read when first needed, not copied here."""

    def __init__(
        self,
        values: Iterable[str] | Callable[[], Iterable[str]],
        label: str | None = None,
        *,
        qualified: Mapping[str, re.Pattern[str]] | None = None,
    ) -> None:
        self._values = values if callable(values) else tuple(values)
        self.label = label  # how docs name a long set listed elsewhere
        # Words that may carry a qualifier after a colon (``permissive_off:water_flow``),
        # each with the pattern the qualifier must match: still a closed, bounded set.
        self.qualified = dict(qualified or {})

    @property
    def values(self) -> tuple[str, ...]:
        vals = self._values() if callable(self._values) else self._values
        return tuple(vals)

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self._fail(value)
        word, colon, qualifier = value.partition(":")
        if colon:
            pattern = self.qualified.get(word)
            if pattern is None or not pattern.fullmatch(qualifier):
                raise self._fail(value)
            return value
        if value not in self.values:
            raise self._fail(value)
        return value

    def describe(self) -> str:
        return self.label or "one of " + ", ".join(self.values)


class Nested(Spec):
    """A JSON object checked against another message type."""

    def __init__(self, cls: type[Message]) -> None:
        self.cls = cls

    def check(self, value: Any) -> Message:
        if not isinstance(value, Mapping):
            raise self._fail(value)
        return self.cls.from_dict(value)

    def encode(self, value: Message) -> dict[str, Any]:
        return value.to_dict()

    def describe(self) -> str:
        return f"object ({self.cls.WHAT})"


@dataclass(frozen=True)
class Rule:
    """A field's spec and presence rules; lives in the dataclass field's metadata."""

    spec: Spec
    nullable: bool = False
    required: bool = True  # must be present on the wire (it may still be null if nullable)
    omit_none: bool = False  # encode: leave the key out when the value is None

    def describe(self) -> str:
        text = self.spec.describe()
        if self.nullable:
            text += ", or null"
        if not self.required:
            text += "; optional"
        return text


_MISSING = dataclasses.MISSING


def wire(
    spec: Spec, *, nullable: bool = False, default: Any = _MISSING, omit_none: bool = False
) -> Any:
    """A message field: required unless it has a default (then it may be left out)."""
    rule = Rule(spec, nullable=nullable, required=default is _MISSING, omit_none=omit_none)
    if default is _MISSING:
        return dataclasses.field(metadata={"wire": rule})
    return dataclasses.field(default=default, metadata={"wire": rule})


M = TypeVar("M", bound="Message")


@dataclass(frozen=True, kw_only=True)
class Message:
    """Base of every typed message: decoding, encoding and documentation from the specs."""

    WHAT: ClassVar[str] = "message"
    _rules: ClassVar[list[tuple[str, Rule]] | None] = None
    _defaults: ClassVar[dict[str, Any] | None] = None

    @classmethod
    def rules(cls) -> list[tuple[str, Rule]]:
        cached = cls.__dict__.get("_rules")
        if cached is None:
            cached = [
                (f.name, f.metadata["wire"])
                for f in dataclasses.fields(cls)
                if "wire" in f.metadata
            ]
            cls._rules = cached  # per class: decoding runs for every message
        return cached

    @classmethod
    def from_dict(cls: type[M], obj: Mapping[str, Any]) -> M:
        """Check every field; unknown keys are ignored (a newer node may add some)."""
        values = decode_fields(cls.rules(), obj, cls.WHAT)
        defaults = cls.__dict__.get("_defaults")
        if defaults is None:
            defaults = {
                f.name: f.default
                for f in dataclasses.fields(cls)
                if f.default is not dataclasses.MISSING
            }
            cls._defaults = defaults
        # Every value is checked already: the frozen dataclass __init__ would only add one
        # object.__setattr__ per field, on every message the hub receives.
        message = object.__new__(cls)
        message.__dict__.update(defaults)
        message.__dict__.update(values)
        return message

    def to_dict(self) -> dict[str, Any]:
        return encode_fields(self, self.rules())


def decode_fields(
    rules: Iterable[tuple[str, Rule]], obj: Mapping[str, Any], what: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    get = obj.get
    for name, rule in rules:
        value = get(name, _MISSING)
        if value is None:
            if not rule.nullable:
                raise ContractError(
                    f"{what}: field {name!r} should be {rule.spec.describe()}, got None"
                )
            out[name] = None
            continue
        if value is _MISSING:
            if rule.required:
                raise ContractError(f"{what}: missing field {name!r}")
            continue
        try:
            out[name] = rule.spec.check(value)
        except ContractError as exc:
            raise ContractError(f"{what}: field {name!r} {exc}") from exc
    return out


def encode_fields(message: Message, rules: Iterable[tuple[str, Rule]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, rule in rules:
        value = getattr(message, name)
        if value is None:
            if not rule.omit_none:
                out[name] = None
            continue
        out[name] = rule.spec.encode(value)
    return out
