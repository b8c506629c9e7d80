"""Zoph & Le's controller for their own search space (``NAS-ZophLe-v0``), which REINFORCE uses there.

An LSTM writes the tokens in order. Its input is the previous token's choice, embedded by a table of that token's
type (one embedding per token type, so "3" as a filter height and "3" as a stride are different inputs); a learned
start token opens the sequence. Each non-anchor token has a softmax head of its own type. An anchor token "does
layer j feed layer i?" is Zoph & Le's content-based sigmoid

    P(j feeds i) = sigmoid(v^T tanh(W_prev h_j + W_curr h_i)),

where ``h_i`` is layer i's anchor point: the LSTM output right after layer i's last non-anchor token was read
(the state from which layer i's anchor decisions are made; layer 0's exists though it has no anchors). As a
two-way softmax its logits are ``[0, score]``. The choice is then fed back like any other token, so the next layer
is written knowing which connections were made (the paper does not say what the next input is; this is our choice).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from nasgym.core.zophle.space import ANCHOR, N_ACTIONS, TOKEN_TYPES
from nasgym.core.zophle.space_model import ZophLeSpaceModel


class ActionController(nn.Module):
    """What REINFORCE needs of a controller: ``forward(previous_actions, state)`` -> logits ``(batch, time,
    n_actions)`` and the state to pass back, and ``start``, the input token before the first action."""

    start: int


class ZophLeController(ActionController):
    """``forward(previous_actions, state)`` -> logits ``(batch, time, N_ACTIONS)``, as ``reinforce.Controller``:
    call it on whole sequences from the start token, or step by step passing the state back."""

    def __init__(self, space: ZophLeSpaceModel, hidden_size: int, num_layers: int, init_range: float):
        super().__init__()
        self.tokens = space.tokens
        self.start = space.n_actions
        # Rows type * N_ACTIONS + action: a table per token type, in one module; the last row is the start token.
        self.start_row = len(TOKEN_TYPES) * N_ACTIONS
        self.embedding = nn.Embedding(self.start_row + 1, hidden_size)
        self.lstm = nn.LSTM(hidden_size, hidden_size, num_layers, batch_first=True)
        self.heads = nn.ModuleList(nn.Linear(hidden_size, N_ACTIONS) for _ in range(ANCHOR))
        self.w_prev = nn.Linear(hidden_size, hidden_size, bias=False)
        self.w_curr = nn.Linear(hidden_size, hidden_size, bias=False)
        self.v = nn.Linear(hidden_size, 1, bias=False)
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -init_range, init_range)
        # Position whose output is layer i's anchor point: just after its last non-anchor token.
        self.anchor_point: dict[int, int] = {}
        for position, token in enumerate(self.tokens):
            if token.type != ANCHOR:
                self.anchor_point[token.layer] = position + 1
        self._previous_type = torch.tensor([-1] + [token.type for token in self.tokens])

    def forward(self, previous_actions: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """``previous_actions`` (batch, time): the start token, then the actions so far -> the next token's logits at
        every position, and the state to continue from (LSTM state, position, outputs so far)."""
        lstm_state, offset, history = state if state is not None else (None, 0, None)
        steps = previous_actions.shape[1]
        positions = torch.arange(offset, offset + steps)
        types = self._previous_type[positions.clamp(max=len(self._previous_type) - 1)]
        rows = types[None, :] * N_ACTIONS + previous_actions.clamp(max=N_ACTIONS - 1)
        rows = torch.where((previous_actions == self.start) | (types[None, :] < 0), self.start_row, rows)
        output, lstm_state = self.lstm(self.embedding(rows), lstm_state)
        history = output if history is None else torch.cat([history, output], dim=1)
        logits = []
        for t in range(steps):
            position = offset + t
            if position >= len(self.tokens):  # past the longest episode (padding): any logits do
                logits.append(torch.zeros(output.shape[0], N_ACTIONS))
                continue
            token = self.tokens[position]
            if token.type != ANCHOR:
                logits.append(self.heads[token.type](output[:, t]))
                continue
            h_i = history[:, self.anchor_point[token.layer]]
            h_j = history[:, self.anchor_point[token.source]]
            score = self.v(torch.tanh(self.w_prev(h_j) + self.w_curr(h_i)))
            zeros = torch.zeros_like(score)
            logits.append(torch.cat([zeros, score, zeros, zeros], dim=-1)[:, :N_ACTIONS])
        return torch.stack(logits, dim=1), (lstm_state, offset + steps, history)


CONTROLLERS: dict[str, Callable[[Any, int, int, float], ActionController]] = {"zophle": ZophLeController}
"""REINFORCE's controller per space model ``name``, for spaces with one of their own; any other space gets the chain
controller (``reinforce.Controller``). Each is built as ``controller(space, hidden_size, num_layers, init_range)``."""
