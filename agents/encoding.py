"""The core's observation encodings and action masks as torch tensors, for the agents' networks, plus the
masked-softmax and threading helpers the learning agents share. The rules themselves live in the core
(``nasgym.core.search_space.nsc_action_mask``, ``nasgym.core.observation``), once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from nasgym.core import observation, search_space
from nasgym.core.observation import LAYER_CLASSES

__all__ = [
    "LAYER_CLASSES",
    "encode_nsc",
    "episode_length",
    "layer_indices",
    "masked_logits",
    "one_thread",
    "valid_action_mask",
]


def _as_numpy(nsc: np.ndarray | torch.Tensor) -> np.ndarray:
    return nsc.detach().cpu().numpy() if isinstance(nsc, torch.Tensor) else np.asarray(nsc)


def layer_indices(nsc: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Per row: 0 for an empty row, ``action + 1`` otherwise. Shape ``nsc.shape[:-1]``."""
    return torch.as_tensor(search_space.layer_indices(_as_numpy(nsc)))


def encode_nsc(nsc: np.ndarray | torch.Tensor) -> torch.Tensor:
    """One-hot NSC rows, concatenated: ``(..., max_layers * LAYER_CLASSES)`` float."""
    return torch.as_tensor(observation.one_hot_nsc(_as_numpy(nsc)))


def episode_length(nsc: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Rows used so far (the time step within the episode)."""
    return torch.as_tensor(observation.episode_length(_as_numpy(nsc)))


def valid_action_mask(nsc: np.ndarray | torch.Tensor, image_size: int) -> torch.Tensor:
    """Actions that keep the network valid, ``(..., N_ACTIONS)`` bool (``search_space.nsc_action_mask``)."""
    return torch.as_tensor(search_space.nsc_action_mask(_as_numpy(nsc), image_size))


def masked_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Logits with invalid actions pushed to the lowest finite value (probability 0, no NaN in the entropy)."""
    return logits.masked_fill(~mask, torch.finfo(logits.dtype).min)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the agents' tiny networks on one thread (also usable as a decorator).

    Intra-op threads only add synchronisation to work this small: an LSTM step took 13 ms on two threads
    and 0.5 ms on one on a busy 2-core machine. Child training, outside this block, keeps every thread.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
