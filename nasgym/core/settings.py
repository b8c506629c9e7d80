"""Settings are frozen dataclasses: each field holds its default and, in the docstring under it, its help.

The environment's keywords, the command line's flags and the tables in the docs are all generated from those
fields, so a default is written once. This module reads the fields (nested dataclasses flattened), checks and
converts values against their annotated types, and builds the dataclasses from flat keyword dictionaries.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import difflib
import functools
import inspect
import itertools
import math
import textwrap
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union

from nasgym.core.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


@dataclass(frozen=True)
class Setting:
    """One field of a settings dataclass, as the environment, the CLI and the docs see it."""

    name: str
    type: Any
    default: Any
    help: str
    owner: type


@functools.cache
def attribute_docs(cls: type) -> dict[str, str]:
    """The docstrings written under a dataclass's fields (the convention CleanRL and tyro read)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):  # no source (a frozen or generated class): no help texts
        return {}
    docs: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


@functools.cache
def _cached_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _hints(cls: type) -> dict[str, Any]:
    # (a function of its own: mypy takes a ``type[T]`` for no ``Hashable`` at the cache's call)
    return _cached_hints(cls)


def _is_settings(kind: Any) -> bool:
    return isinstance(kind, type) and dataclasses.is_dataclass(kind)


def settings_of(*classes: type) -> list[Setting]:
    """Every field of ``classes`` in order; a field that is itself a settings dataclass contributes its fields."""
    found: list[Setting] = []
    for cls in classes:
        hints = _hints(cls)
        docs = attribute_docs(cls)
        for field in dataclasses.fields(cls):
            kind = hints[field.name]
            if _is_settings(kind):
                found += settings_of(kind)
                continue
            if field.default is not dataclasses.MISSING:
                default = field.default
            elif field.default_factory is not dataclasses.MISSING:
                default = field.default_factory()
            else:
                raise TypeError(f"setting {field.name} of {cls.__name__} has no default")
            found.append(Setting(field.name, kind, default, docs.get(field.name, ""), cls))
    names = [setting.name for setting in found]
    if len(set(names)) != len(names):
        raise TypeError(f"settings classes share field names: {sorted(n for n in names if names.count(n) > 1)}")
    return found


def describe_type(kind: Any) -> str:
    """A short human name for an annotated type, for help texts and errors."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join("None" if a is type(None) else describe_type(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a tuple of {describe_type(args[0])}"
        return f"a tuple ({', '.join(describe_type(a) for a in args)})"
    names = {int: "an int", float: "a number", str: "a string", bool: "True or False"}
    return names.get(kind, getattr(kind, "__name__", str(kind)))


def check_value(name: str, kind: Any, value: Any) -> Any:
    """``value`` converted to ``kind`` where the conversion loses nothing (an int where a float goes, a list for a
    tuple, a Path for a string); anything else is a ConfigError naming the setting and what it takes."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    wrong = ConfigError(f"{name} must be {describe_type(kind)}, got {_short(value)}")
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return check_value(name, option, value)
            except ConfigError:
                continue
        raise wrong
    if origin is Literal:
        if value in args and not isinstance(value, bool):
            return value
        raise ConfigError(f"{name} must be one of {', '.join(repr(a) for a in args)}, got {_short(value)}")
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            raise wrong
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) != len(value):
            raise wrong
        return tuple(check_value(name, item, v) for item, v in zip(items, value, strict=True))
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise wrong
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        if _is_numpy_integer(value):
            return int(value)
        raise wrong
    if kind is float:
        if (isinstance(value, (int, float)) and not isinstance(value, bool)) or _is_numpy_number(value):
            value = float(value)
            if math.isnan(value):
                raise ConfigError(f"{name} must be a number, got nan")
            return value
        raise wrong
    if kind is str:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, str):
            return value
        raise wrong
    return value


def _is_numpy_integer(value: Any) -> bool:
    return type(value).__module__ == "numpy" and hasattr(value, "dtype") and value.dtype.kind in "iu"


def _is_numpy_number(value: Any) -> bool:
    return type(value).__module__ == "numpy" and hasattr(value, "dtype") and value.dtype.kind in "iuf"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def parse_text(name: str, kind: Any, text: str) -> Any:
    """A command-line string as a value of ``kind`` ("none" for None, comma lists for tuples)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (Union, types.UnionType):
        if text.strip().lower() in ("none", "null", "") and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return parse_text(name, option, text)
            except ConfigError:
                continue
        raise ConfigError(f"{name} must be {describe_type(kind)}, got {_short(text)}")
    if origin is tuple:
        parts = [part for part in text.replace("(", "").replace(")", "").replace("[", "").replace("]", "").split(",")]
        parts = [part.strip() for part in parts if part.strip()]
        items = args[:1] * len(parts) if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) != len(parts):
            raise ConfigError(
                f"{name} must be {describe_type(kind)} written as comma-separated values, got {_short(text)}"
            )
        return tuple(parse_text(name, item, part) for item, part in zip(items, parts, strict=True))
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {_short(text)}")
    if kind in (int, float):
        try:
            number = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            number = text
        if kind is float and isinstance(number, str):  # 'nan', 'inf'
            with contextlib.suppress(ValueError):
                number = float(number)
        return check_value(name, kind, number)
    return check_value(name, kind, text)


def unknown_name_error(name: str, known: Iterable[str], what: str) -> ConfigError:
    """'unknown ... 'epoch'; did you mean 'epochs'? known: ...' in one line."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return ConfigError(f"unknown {what} {name!r}; {hint}known: {', '.join(known)}")


def build(cls: type[T], values: Mapping[str, Any], what: str = "setting") -> T:
    """``cls`` from flat ``values`` (nested settings dataclasses filled from the same dictionary), every value
    type-checked first. Unknown names are an error that lists the known ones."""
    known = {setting.name: setting for setting in settings_of(cls)}
    for name in values:
        if name not in known:
            raise unknown_name_error(name, known, what)
    checked = {name: check_value(name, known[name].type, value) for name, value in values.items()}
    return _construct(cls, checked)


def _construct(cls: type[T], values: Mapping[str, Any]) -> T:
    hints = _hints(cls)
    arguments = {}
    for field in dataclasses.fields(cls):
        kind = hints[field.name]
        if _is_settings(kind):
            arguments[field.name] = _construct(kind, values)
        elif field.name in values:
            arguments[field.name] = values[field.name]
    return cls(**arguments)


ALLOWS_INFINITY = "infinite"
"""The field metadata key of a number that may be infinite, as in
``budget: float = dataclasses.field(default=1.0, metadata={ALLOWS_INFINITY: True})``. Every other float setting must
be finite: an infinite learning rate or epsilon trains to nonsense, an infinite CPU count is no request."""


def check_fields(instance: Any) -> None:
    """Check every field of a (frozen) settings dataclass against its type, converting losslessly in place; call
    it from ``__post_init__`` so a wrong type fails where the settings are made, not deep in a training. Numbers
    must be finite unless the field allows infinity (``ALLOWS_INFINITY``)."""
    hints = _hints(type(instance))
    for field in dataclasses.fields(instance):
        if not _is_settings(hints[field.name]):
            value = check_value(field.name, hints[field.name], getattr(instance, field.name))
            if not field.metadata.get(ALLOWS_INFINITY) and not _finite(value):
                raise ConfigError(f"{field.name} must be a finite number, got {_short(value)}")
            object.__setattr__(instance, field.name, value)


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, tuple):
        return all(_finite(item) for item in value)
    return True


def flatten(instance: Any) -> dict[str, Any]:
    """The flat ``{name: value}`` of a settings dataclass, nested ones included (the inverse of ``build``)."""
    values = {}
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        if dataclasses.is_dataclass(value):
            values.update(flatten(value))
        else:
            values[field.name] = value
    return values


def markdown_table(settings: Iterable[Setting]) -> str:
    """| keyword | default | what it sets |, one row per setting."""
    rows = ["| keyword | default | what it sets |", "|---|---|---|"]
    rows += [f"| `{s.name}` | `{s.default!r}` | {s.help} |" for s in settings]
    return "\n".join(rows)
