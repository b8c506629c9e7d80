"""``WeightSharingConfig``: the ``ws_*`` keywords of ``NAS-v0``, read when ``reward_source="weight_sharing"``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nasgym.core import settings
from nasgym.core.errors import ConfigError


@dataclass(frozen=True)
class WeightSharingConfig:
    """How the shared weights are trained and a network scored with them (ENAS-style rewards)."""

    ws_head: Literal["gap", "per_shape"] = "gap"
    """The classifier after the shared layers: `gap`, global average pooling and one linear layer per final channel
    count (ENAS' head, a few thousand weights); `per_shape`, flatten and one linear layer per final feature-map shape
    (channels, side), the nearest to the child's flatten + dense head that can be shared, whose heads grow with the
    image side squared. Measured on omniglot_small1: per_shape ranked better after short warm-ups, gap as well or
    better after W=10000 (README, Cheap rewards)."""
    ws_steps: int = 1
    """k: minibatches the shared weights train through the network of each rewarded step before it is scored (ENAS:
    one minibatch per sampled child)."""
    ws_warmup: int = 10000
    """W: before the first reward, train the shared weights on this many uniformly sampled valid networks, k
    minibatches each (single-path one-shot, Guo et al. 2019); 0: no warm-up. On omniglot_small1 at 28 px, scored
    on 512 images (the default), Kendall tau of the gap head against trained rewards rose from 0.06 (W=0) to 0.17
    (1000), 0.43 (3000) and 0.65 (10000, about 4 minutes on a 2-core CPU, paid once per search)."""
    ws_optimizer: Literal["adam", "sgd"] = "adam"
    """Optimiser of the shared weights: Adam (the child training's betas and epsilon) or SGD with momentum 0.9."""
    ws_learning_rate: float = 1e-3
    """Learning rate of the shared weights (constant)."""
    ws_valid_samples: int = 512
    """Images of the reward split, fixed for the whole search, that score every network. 512, not ENAS' one minibatch
    of 128: every recorded weight-sharing ranking was measured with 512, and 128 images give a network only a few
    distinct scores on many classes (README, Cheap rewards)."""

    def __post_init__(self) -> None:
        settings.check_fields(self)
        if self.ws_steps < 0 or self.ws_warmup < 0:
            raise ConfigError(f"ws_steps and ws_warmup must be >= 0, got {self.ws_steps} and {self.ws_warmup}")
        if not self.ws_learning_rate > 0:
            raise ConfigError(f"ws_learning_rate must be a positive number, got {self.ws_learning_rate}")
        if self.ws_valid_samples < 1:
            raise ConfigError(f"ws_valid_samples must be at least 1, got {self.ws_valid_samples}")
