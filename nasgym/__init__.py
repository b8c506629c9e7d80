"""nasgym: neural architecture search as a Gymnasium environment, with the agents that search it.

Importing the package registers ``NAS-v0``::

    import gymnasium as gym, nasgym
    env = gym.make("NAS-v0", dataset="digits")
"""

from gymnasium.envs.registration import register, registry

from nasgym.errors import ArchitectureError, DatasetError, NasGymError, RewardCacheError
from nasgym.search_space import ACTIONS, Architecture, action_mask

__version__ = "0.1.0"
__all__ = [
    "ACTIONS",
    "Architecture",
    "ArchitectureError",
    "DatasetError",
    "NasGymError",
    "RewardCacheError",
    "__version__",
    "action_mask",
]  # fmt: skip

if "NAS-v0" not in registry:
    register(id="NAS-v0", entry_point="nasgym.env:NASEnv")
