"""Torch views of what the environment's ``SpaceModel`` computes from observations (masks, features), the masked
softmax the learning agents share, and ``one_thread`` (their networks are too small for threads)."""

from __future__ import annotations

import numpy as np
import torch

from nasgym.core.space_model import SpaceModel
from nasgym.core.threads import single_threaded as one_thread

__all__ = ["features", "masked_logits", "masks", "one_thread"]


def _as_numpy(observations: np.ndarray | torch.Tensor) -> np.ndarray:
    return observations.detach().cpu().numpy() if isinstance(observations, torch.Tensor) else np.asarray(observations)


def masks(space: SpaceModel, observations: np.ndarray | torch.Tensor, mask_invalid: bool = True) -> torch.Tensor:
    """The actions an agent may choose, ``(..., n_actions)`` bool: the valid ones, or all when ``mask_invalid`` is
    False (NasGym's agents, for which the environment ends an invalid episode with reward 0)."""
    valid = torch.as_tensor(space.masks(_as_numpy(observations)))
    return valid if mask_invalid else torch.ones_like(valid)


def features(space: SpaceModel, observations: np.ndarray | torch.Tensor) -> torch.Tensor:
    """What the networks read, ``(..., feature_size)`` float32."""
    return torch.as_tensor(space.features(_as_numpy(observations)))


def masked_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Logits with invalid actions pushed to the lowest finite value (probability 0, no NaN in the entropy)."""
    return logits.masked_fill(~mask, torch.finfo(logits.dtype).min)
