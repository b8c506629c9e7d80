"""Zoph & Le's search space: the token schedule, the choices per token, and architectures as action sequences.

A layer is written as tokens in the paper's order: filter height, filter width, number of filters, stride (when
strides are searched), then one anchor token per earlier layer ("does layer j feed this one?"). Every token's
choices are the first few actions of one ``Discrete(N_ACTIONS)`` space; which tokens come when depends only on the
number of layers and on whether strides are searched, so the schedule of ``n`` layers is a prefix of the schedule of
``n + 1``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from nasgym.core.errors import ArchitectureError

HEIGHT, WIDTH, FILTERS, STRIDE, ANCHOR = range(5)
TOKEN_TYPES = ("filter_height", "filter_width", "filters", "stride", "anchor")
FILTER_SIDES = (1, 3, 5, 7)
FILTER_COUNTS = (24, 36, 48, 64)
STRIDES = (1, 2, 3)
CHOICES: tuple[tuple[int, ...], ...] = (FILTER_SIDES, FILTER_SIDES, FILTER_COUNTS, STRIDES, (0, 1))
"""What each action means per token type: action ``a`` at a token of type ``t`` chooses ``CHOICES[t][a]``."""
N_ACTIONS = max(len(choices) for choices in CHOICES)
"""The one ``Discrete`` action space is sized for the largest choice; masks say which actions a token takes."""


@dataclass(frozen=True)
class Token:
    """One decision: its type, the layer it belongs to (0-based), and for an anchor the earlier layer it asks about."""

    type: int
    layer: int
    source: int = -1

    @property
    def choices(self) -> int:
        return len(CHOICES[self.type])


@functools.cache
def schedule(layers: int, strides: bool = True) -> tuple[Token, ...]:
    """Every token of a network of ``layers`` layers, in the order the controller writes them."""
    kinds = (HEIGHT, WIDTH, FILTERS, STRIDE) if strides else (HEIGHT, WIDTH, FILTERS)
    tokens: list[Token] = []
    for layer in range(layers):
        tokens += [Token(kind, layer) for kind in kinds]
        tokens += [Token(ANCHOR, layer, source) for source in range(layer)]
    return tuple(tokens)


def space_size(layers: int, strides: bool = True) -> int:
    """How many distinct networks ``layers`` layers give: the product of every token's choices."""
    size = 1
    for token in schedule(layers, strides):
        size *= token.choices
    return size


@dataclass(frozen=True)
class ConvLayer:
    """One layer of a child network: conv(height x width, filters, stride) fed by ``inputs`` (none: the image)."""

    height: int
    width: int
    filters: int
    stride: int
    inputs: tuple[int, ...]


_LAYER_TEXT = re.compile(r"^(\d+)x(\d+)x(\d+)(?:s(\d+))?(?::([01]*))?$")


@dataclass(frozen=True)
class ZophLeArchitecture:
    """A network of this space as the actions that wrote it (possibly unfinished, or ending with an invalid choice).

    ``str`` writes each layer as ``HxWxF`` (``sS`` for its stride when strides are searched) and ``:bits`` for its
    anchors, layers joined by ``-``: ``"3x3x24s1-5x1x36s2:1-7x7x64s1:01"`` is three layers, the second fed by the
    first, the third by the second only. An unfinished layer shows the tokens chosen so far.
    """

    actions: tuple[int, ...]
    strides: bool = True
    space: ClassVar[str] = "zophle"
    """The search space this network is of (``nasgym.core.spaces``); also its reward keys' ``space`` field."""

    def __post_init__(self) -> None:
        for position, action in enumerate(self.actions):
            if not (isinstance(action, (int, np.integer)) and 0 <= action < N_ACTIONS):
                raise ArchitectureError(f"action {action!r} at position {position} is not in 0..{N_ACTIONS - 1}")
        object.__setattr__(self, "actions", tuple(int(action) for action in self.actions))

    # -- reading the actions --------------------------------------------------------------------------------------
    def tokens(self) -> tuple[Token, ...]:
        """The tokens the actions answer, in order."""
        return schedule(self.layer_count_bound(), self.strides)[: len(self.actions)]

    def layer_count_bound(self) -> int:
        """Enough layers for the schedule to cover every action."""
        layers = 1
        while len(schedule(layers, self.strides)) < len(self.actions):
            layers += 1
        return layers

    @property
    def is_valid(self) -> bool:
        """Every action is one of its token's choices."""
        return all(action < token.choices for action, token in zip(self.actions, self.tokens(), strict=True))

    def complete_layers(self) -> int:
        """Layers whose every token has been chosen."""
        layers = 0
        while len(schedule(layers + 1, self.strides)) <= len(self.actions):
            layers += 1
        return layers

    def is_complete(self, layers: int) -> bool:
        """Whether the actions are exactly the tokens of ``layers`` layers."""
        return len(self.actions) == len(schedule(layers, self.strides))

    @property
    def layers(self) -> tuple[ConvLayer, ...]:
        """The finished layers (valid actions only)."""
        if not self.is_valid:
            raise ArchitectureError(f"{self} has a choice outside its token's choices")
        built: list[ConvLayer] = []
        values: dict[int, int] = {}
        inputs: list[int] = []
        for action, token in zip(self.actions, self.tokens(), strict=True):
            if token.type == ANCHOR:
                if action:
                    inputs.append(token.source)
            else:
                values[token.type] = CHOICES[token.type][action]
            if self._layer_ends(len(built), token):
                built.append(
                    ConvLayer(values[HEIGHT], values[WIDTH], values[FILTERS], values.get(STRIDE, 1), tuple(inputs))
                )
                values, inputs = {}, []
        return tuple(built)

    def _layer_ends(self, layer: int, token: Token) -> bool:
        tokens = schedule(layer + 1, self.strides)
        return token == tokens[-1]

    @property
    def network(self) -> ZophLeArchitecture:
        """The network the reward belongs to: the actions themselves (a network has no terminal token here)."""
        return self

    def encoding(self) -> list[list[int]]:
        """Per layer ``[height, width, filters, stride, *inputs]``: the reward cache's record of the network."""
        return [[layer.height, layer.width, layer.filters, layer.stride, *layer.inputs] for layer in self.layers]

    def append(self, action: int) -> ZophLeArchitecture:
        return ZophLeArchitecture((*self.actions, int(action)), self.strides)

    def __len__(self) -> int:
        return len(self.actions)

    # -- text -----------------------------------------------------------------------------------------------------
    def __str__(self) -> str:
        parts: list[str] = []
        text, layer = "", 0
        for action, token in zip(self.actions, self.tokens(), strict=True):
            value = str(CHOICES[token.type][action]) if action < token.choices else f"?{action}"
            if token.type == ANCHOR:
                text += (":" if token.source == 0 else "") + value
            elif token.type == STRIDE:
                text += f"s{value}"
            else:
                text += ("" if token.type == HEIGHT else "x") + value
            if self._layer_ends(layer, token):
                parts.append(text)
                text, layer = "", layer + 1
        if text:
            parts.append(text)
        return "-".join(parts)

    @classmethod
    def parse(cls, text: str, strides: bool | None = None) -> ZophLeArchitecture:
        """Read the text ``str`` writes (finished layers only); ``strides`` is inferred when not given."""
        layers = [part for part in text.strip().split("-") if part]
        matches = [match for match in map(_LAYER_TEXT.match, layers) if match is not None]
        if not layers or len(matches) != len(layers):
            raise ArchitectureError(
                f"cannot read {text[:60]!r} as a Zoph & Le network; write layers as HxWxF[sS][:bits] joined by '-', "
                "e.g. '3x3x24s1-5x5x36s2:1'"
            )
        has_strides = [match.group(4) is not None for match in matches]
        if strides is None:
            strides = has_strides[0]
        if any(has != strides for has in has_strides):
            raise ArchitectureError(f"{text[:60]!r}: every layer needs a stride (sS), or none may have one")
        actions: list[int] = []
        for index, match in enumerate(matches):
            height, width, filters, stride, bits = match.groups()
            chosen = [(HEIGHT, int(height)), (WIDTH, int(width)), (FILTERS, int(filters))]
            if strides:
                chosen.append((STRIDE, int(stride)))
            for kind, value in chosen:
                if value not in CHOICES[kind]:
                    raise ArchitectureError(
                        f"layer {index} of {text[:60]!r}: {TOKEN_TYPES[kind]} {value} is not one of {CHOICES[kind]}"
                    )
                actions.append(CHOICES[kind].index(value))
            bits = bits or ""
            if len(bits) != index:
                raise ArchitectureError(
                    f"layer {index} of {text[:60]!r} needs {index} anchor bits (one per earlier layer), got {len(bits)}"
                )
            actions += [int(bit) for bit in bits]
        return cls(tuple(actions), strides)


def is_zophle_text(text: str) -> bool:
    """Whether an architecture string is of this space: its layers start with a digit, a chain's with c, m, a or t."""
    return text[:1].isdigit()
