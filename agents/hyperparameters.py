"""Checking an agent's hyperparameters where they are made: types from the dataclass fields' annotations, ranges
from ``Range`` markers inside ``Annotated``.

A field written ``batch_size: PositiveInt = 20`` is an ``int`` to everything that reads the types (the command
line's ``--set``, the docs) and an int >= 1 to ``validate``, so each rule is written once, beside its field.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Union

from nasgym.core import settings
from nasgym.core.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """The numbers a field takes: from ``low`` to ``high``, each end included or not."""

    low: float = -math.inf
    high: float = math.inf
    low_included: bool = True
    high_included: bool = False

    def __contains__(self, value: float) -> bool:
        above = value >= self.low if self.low_included else value > self.low
        below = value <= self.high if self.high_included else value < self.high
        return above and below

    def __str__(self) -> str:
        if self.high == math.inf:
            return f"{'>=' if self.low_included else '>'} {self.low:g}"
        opening, closing = "[" if self.low_included else "(", "]" if self.high_included else ")"
        return f"in {opening}{self.low:g}, {_bound(self.high)}{closing}"


def _bound(number: float) -> str:
    return "2**63" if number == 2**63 else f"{number:g}"


PositiveInt = Annotated[int, Range(1)]
NonNegativeInt = Annotated[int, Range(0)]
PositiveFloat = Annotated[float, Range(0, low_included=False)]
NonNegativeFloat = Annotated[float, Range(0)]
Fraction = Annotated[float, Range(0, 1, high_included=True)]
"""A number in [0, 1]: a probability, a discount, a smoothing constant."""
Seed = Annotated[int, Range(0, 2**63)]
"""What NumPy's and PyTorch's generators both accept."""


_HINTS: dict[type, tuple[dict[str, Any], dict[str, Any]]] = {}


def _hints(cls: type) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields' types with their ``Range`` markers, and without them (as ``settings.check_value`` reads them);
    memoised per class (a dict, not ``functools.cache``, whose stub does not take a class as ``Hashable``)."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls, include_extras=True), typing.get_type_hints(cls)
    return _HINTS[cls]


def validate(config: Any) -> None:
    """Check every field of a hyperparameter dataclass against its type and range, converting losslessly in place
    (an int where a float goes, a list for a tuple). Call it from ``__post_init__``. Every bad field is named in
    one ConfigError, one line."""
    annotated, plain = _hints(type(config))
    problems = []
    for field in dataclasses.fields(config):
        try:
            value = settings.check_value(field.name, plain[field.name], getattr(config, field.name))
            _check_range(field.name, annotated[field.name], value)
        except ConfigError as error:
            problems.append(str(error))
        else:
            object.__setattr__(config, field.name, value)
    if problems:
        raise ConfigError("; ".join(problems))


def _check_range(name: str, kind: Any, value: Any, whole: Any = None) -> None:
    """Raise if ``value`` (already of the stripped type) falls outside a ``Range`` anywhere in ``kind``."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Annotated:
        for bounds in (marker for marker in args[1:] if isinstance(marker, Range)):
            if value not in bounds:
                shown = value if whole is None else whole
                what = f"hold numbers {bounds}" if whole is not None else f"be {bounds}"
                raise ConfigError(f"{name} must {what}, got {shown!r}")
        _check_range(name, args[0], value, whole)
    elif origin in (Union, types.UnionType):
        for option in args:  # the option the value was accepted as
            base = typing.get_args(option)[0] if typing.get_origin(option) is Annotated else option
            if isinstance(value, typing.get_origin(base) or base):
                _check_range(name, option, value, whole)
                return
    elif origin is tuple:
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        for item, element in zip(items, value, strict=True):
            _check_range(name, item, element, value)
