"""Reading a configuration file: the YAML document, typed key access and clear errors.

A typo in a config file on a Pi in a workshop is found by someone who did not write it,
so every error names the file, the line, the key path and what was expected
(:class:`ConfigError`). :class:`Doc` keeps the line of every key; :class:`Section` reads
one mapping key by key, refuses unknown keys (with a suggestion) and treats ``null`` as
"use the default". Relative paths in a file are relative to that file's directory.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

import yaml


class ConfigError(ValueError):
    """``<file>[:<line>]: <key.path>: expected <what>, got <value>``."""

    def __init__(
        self,
        file: str | Path,
        key: str,
        expected: str,
        got: object = None,
        *,
        line: int | None = None,
    ) -> None:
        self.file = str(file)
        self.key = key
        self.expected = expected
        self.got = got
        self.line = line  # 1-based line in the file, when the YAML position is known
        place = f"{self.file}:{line}" if line else self.file
        where = f"{place}: {key}" if key else place
        tail = f", got {got!r}" if got is not None else ""
        super().__init__(f"{where}: expected {expected}{tail}")


# Ids travel in MQTT topics and Mosquitto ACL patterns, where "/", "+" and "#" break things.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ID_TEXT = "an id of letters, digits, '.', '_' or '-' (at most 64, no spaces or '/')"

_DURATION_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
DURATION_TEXT = "a duration such as '15s', '10m', '72h', '7d', '1h30m' or a number of seconds"


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """``"72h"`` -> ``timedelta(hours=72)``; ValueError for anything else.

    Units keep config files readable where seconds would hide the order of magnitude
    (``604800`` versus ``7d``); bare numbers stay accepted as seconds.
    """
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError(f"negative duration {value}")
        return value
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    try:
        if isinstance(value, int | float):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{value!r} is not a non-negative number of seconds")
            return timedelta(seconds=value)
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not a duration")
        text = value.strip().lower()
        if _DURATION_NUMBER.fullmatch(text):
            return timedelta(seconds=float(text) if "." in text else int(text))
        total = timedelta(0)
        pos = 0
        seen: set[str] = set()
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos or match.group(2) in seen:
                break
            seen.add(match.group(2))
            number = match.group(1)
            amount = float(number) if "." in number else int(number)
            total += timedelta(**{_DURATION_UNITS[match.group(2)]: amount})
            pos = match.end()
        if not seen or pos != len(text):
            raise ValueError(f"{value!r} is not {DURATION_TEXT}")
        return total
    except OverflowError as exc:
        raise ValueError(f"{value!r} is too long a duration") from exc


# --------------------------------------------------------------------------- YAML reading

MISSING: Any = object()


def _parent(key: str) -> str:
    match = re.match(r"^(.*?)(?:\.[^.\[\]]+|\[\d+\])$", key)
    return match.group(1) if match else ""


def child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def suggest(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def one_of(options: Sequence[str]) -> str:
    return "one of " + ", ".join(options)


class Doc:
    """One YAML file: its data, its directory, and the line of every key path.

    Line numbers come from the composed node tree, so errors found after loading (an
    unknown group, a duplicate id) can still point at the line to fix.
    """

    def __init__(self, path: str | Path) -> None:
        self.file = Path(path)
        self.base = self.file.resolve().parent
        self.lines: dict[str, int] = {}
        self.data = self._read()

    def _read(self) -> Any:
        try:
            text = self.file.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ConfigError(self.file, "", "an existing file", "file not found") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(self.file, "", "UTF-8 text", str(exc)) from exc
        except OSError as exc:
            raise ConfigError(self.file, "", "a readable file", exc.strerror) from exc
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            self._index(node, "", set())
            return loader.construct_document(node)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            context = exc.context
            if context and exc.context_mark and exc.context_mark is not mark:
                # An unclosed bracket is noticed lines later: name where it was opened.
                context += f" opened at line {exc.context_mark.line + 1}"
            problem = "; ".join(p for p in (context, exc.problem) if p)
            raise ConfigError(
                self.file,
                "",
                "valid YAML",
                problem or str(exc),
                line=mark.line + 1 if mark else None,
            ) from exc
        except yaml.YAMLError as exc:
            raise ConfigError(self.file, "", "valid YAML", str(exc)) from exc
        except ConfigError:
            raise
        except ValueError as exc:  # e.g. a timestamp like 2025-13-40
            raise ConfigError(self.file, "", "valid YAML values", str(exc)) from exc
        finally:
            loader.dispose()

    def _index(self, node: yaml.Node, path: str, seen: set[int]) -> None:
        if id(node) in seen:  # aliases: index a shared node once, never loop
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                    continue
                key_path = child(path, key_node.value)
                line = key_node.start_mark.line + 1
                if key_node.value in first:
                    # PyYAML would silently keep the last one: the first is then dead text.
                    raise ConfigError(
                        self.file,
                        key_path,
                        f"each key once (already at line {first[key_node.value]})",
                        line=line,
                    )
                first[key_node.value] = line
                self.lines[key_path] = line
                self._index(value_node, key_path, seen)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                item_path = child(path, i)
                self.lines[item_path] = item.start_mark.line + 1
                self._index(item, item_path, seen)

    def line_of(self, key: str) -> int | None:
        while key:
            if key in self.lines:
                return self.lines[key]
            key = _parent(key)
        return None

    def fail(self, key: str, expected: str, got: object = None) -> NoReturn:
        raise ConfigError(self.file, key, expected, got, line=self.line_of(key))

    def root(self, keys: Sequence[str], required: Sequence[str] = ()) -> Section:
        if not isinstance(self.data, dict):
            self.fail(
                "",
                "a YAML mapping of " + ", ".join(keys),
                type(self.data).__name__ if self.data is not None else "an empty file",
            )
        return Section(self, "", self.data, keys, required)


class Section:
    """A mapping in a config file, read key by key with type checks.

    Unknown keys are refused on construction: a misspelt optional key would otherwise be
    ignored and its default silently used. ``null`` means "use the default".
    """

    def __init__(
        self, doc: Doc, path: str, value: Any, keys: Sequence[str], required: Sequence[str] = ()
    ) -> None:
        self.doc = doc
        self.path = path
        if not isinstance(value, dict):
            doc.fail(path, "a mapping with keys " + ", ".join(keys), shown(value))
        for key in value:
            if not isinstance(key, str):
                doc.fail(path, f"text keys ({', '.join(keys)})", key)
            if key not in keys:
                doc.fail(
                    child(path, key),
                    f"a known key{suggest(key, keys)} (known here: {', '.join(keys)})",
                )
        for key in required:
            if value.get(key) is None:
                doc.fail(child(path, key), "a value (this key is required)")
        self.data: dict[str, Any] = value

    def at(self, key: str) -> str:
        return child(self.path, key)

    def fail(self, key: str, expected: str, got: object = None) -> NoReturn:
        self.doc.fail(self.at(key), expected, got)

    def raw(self, key: str, default: Any = MISSING) -> Any:
        value = self.data.get(key)
        if value is None:
            if default is MISSING:
                self.fail(key, "a value (this key is required)")
            return default
        return value

    def text(
        self,
        key: str,
        default: Any = MISSING,
        *,
        pattern: re.Pattern[str] | None = None,
        what: str = "a non-empty string",
    ) -> Any:
        value = self.raw(key, default)
        if value is default and default is not MISSING:
            return value
        if not isinstance(value, str) or not value.strip():
            self.fail(key, what, shown(value))
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(key, what, value)
        return value

    def id(self, key: str, default: Any = MISSING) -> Any:
        return self.text(key, default, pattern=ID_PATTERN, what=ID_TEXT)

    def integer(self, key: str, default: Any, lo: int, hi: int, why: str = "") -> int:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            self.fail(key, f"an integer from {lo} to {hi}{why}", shown(value))
        return value

    def number(self, key: str, default: float, lo: float, hi: float) -> float:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not (lo < value <= hi):
            self.fail(key, f"a number above {lo:g} and at most {hi:g}", shown(value))
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            self.fail(key, "true or false", shown(value))
        return value

    def choice(self, key: str, options: Sequence[str], default: Any = MISSING) -> Any:
        value = self.raw(key, default)
        if not isinstance(value, str) or value not in options:
            hint = suggest(value, options) if isinstance(value, str) else ""
            self.fail(key, one_of(options) + hint, shown(value))
        return value

    def duration(self, key: str, default: str | timedelta) -> timedelta:
        value = self.raw(key, default)
        try:
            result = parse_duration(value)
        except ValueError:
            self.fail(key, DURATION_TEXT, shown(value))
        if result <= timedelta(0):
            self.fail(key, "a duration longer than zero", value)
        return result

    def file_path(self, key: str, default: Any = MISSING) -> Any:
        value = self.text(key, default, what="a file path")
        if value is None:
            return None
        # Relative to the config file, not to the working directory of whoever runs it:
        # the same file must mean the same paths under systemd and in a shell.
        return (self.doc.base / Path(value).expanduser()).resolve()

    def section(self, key: str, keys: Sequence[str], required: Sequence[str] = ()) -> Section:
        value = self.data.get(key)
        return Section(self.doc, self.at(key), {} if value is None else value, keys, required)

    def items(self, key: str) -> Iterator[tuple[str, Any]]:
        value = self.data.get(key)
        if value is None:
            return
        if not isinstance(value, list):
            self.fail(key, "a list", shown(value))
        for i, item in enumerate(value):
            yield child(self.at(key), i), item

    def sections(
        self, key: str, keys: Sequence[str], required: Sequence[str] = ()
    ) -> Iterator[Section]:
        for path, item in self.items(key):
            yield Section(self.doc, path, item, keys, required)


def shown(value: Any) -> Any:
    """What to print after "got": a type name for containers, the value for scalars."""
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return f"a {'mapping' if isinstance(value, dict) else 'list'}"
    return value


def unique(sec: Section, key: str, value: str, seen: dict[str, str], what: str) -> None:
    if value in seen:
        sec.fail(key, f"a unique {what}: {value!r} is already used at {seen[value]}", value)
    seen[value] = sec.at(key)
