"""Weight sharing (ENAS, Pham et al. 2018): one set of weights for every network of the search space, so a reward
costs a few minibatches instead of a child training. ``config`` holds the settings, ``supernet`` the shared
weights, ``evaluator`` the reward source ``NAS-v0`` uses with ``reward_source="weight_sharing"``.

Only the settings are imported here: ``nasgym.core.config`` reads them, and the evaluator needs that module.
"""

from nasgym.core.weight_sharing.config import WeightSharingConfig

__all__ = ["WeightSharingConfig"]
