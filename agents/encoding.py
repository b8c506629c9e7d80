"""The core's observation encodings and action masks as torch tensors, for the agents' networks, plus the
masked softmax the learning agents share, and ``one_thread`` (their networks are too small for threads). The
rules themselves live in the core (``nasgym.core.search_space.nsc_action_mask``, ``nasgym.core.observation``).
"""

from __future__ import annotations

import numpy as np
import torch

from nasgym.core import observation, search_space
from nasgym.core.observation import LAYER_CLASSES
from nasgym.core.threads import single_threaded as one_thread

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
