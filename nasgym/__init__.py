"""nasgym: neural architecture search as a Gymnasium environment, with the agents that search it.

Importing the package registers ``NAS-v0`` and ``NAS-ZophLe-v0`` (Zoph & Le's search space)::

    import gymnasium as gym, nasgym
    env = gym.make("NAS-v0", dataset="digits")
"""

import os

# Idle OpenMP threads sleep instead of spinning: on a shared or busy CPU spinning made child training
# 2-8x slower, and it cost at most 8% on an idle one (benchmarks/README.md). Read when torch loads, so it
# only takes effect when nasgym is imported first; an explicit OMP_WAIT_POLICY is respected.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from gymnasium.envs.registration import register, registry

from nasgym.core.errors import (
    ArchitectureError,
    CheckpointError,
    ConfigError,
    DatasetError,
    NasGymError,
    RewardCacheError,
)
from nasgym.core.search_space import ACTIONS, Architecture, action_mask

__version__ = "0.1.0"
__all__ = [
    "ACTIONS",
    "Architecture",
    "ArchitectureError",
    "CheckpointError",
    "ConfigError",
    "DatasetError",
    "NasGymError",
    "RewardCacheError",
    "__version__",
    "action_mask",
]

if "NAS-v0" not in registry:
    register(
        id="NAS-v0", entry_point="nasgym.core.env:NASEnv", vector_entry_point="nasgym.core.vector_env:NASVectorEnv"
    )
if "NAS-ZophLe-v0" not in registry:
    register(id="NAS-ZophLe-v0", entry_point="nasgym.core.zophle.env:ZophLeEnv")
