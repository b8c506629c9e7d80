"""A zero-cost proxy: NASWOT (Mellor et al. 2021, "Neural Architecture Search without Training").

At initialisation, each input of one minibatch switches every ReLU of the network on or off; two inputs whose
binary codes differ little are hard for the network to tell apart. The score is log|K|, K[i, j] = the number of
ReLUs on which inputs i and j agree (N_A minus their Hamming distance). No training, one forward pass: a fraction
of a second per network, and a ranking to trust only as far as ``nasgym fidelity`` measures it.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from nasgym.core.network import build_network, to_device
from nasgym.core.search_space import Architecture
from nasgym.core.training import ChildTrainer


@torch.no_grad()
def naswot_score(model: nn.Module, images: torch.Tensor) -> float:
    """log|det K| of the ReLU activation codes of ``images`` (one minibatch) through ``model`` as it is."""
    kernel = torch.zeros(len(images), len(images), dtype=torch.float64, device=images.device)

    def record(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        codes = (output.flatten(1) > 0).to(torch.float64)
        kernel.add_(codes @ codes.T).add_((1 - codes) @ (1 - codes).T)

    hooks = [module.register_forward_hook(record) for module in model.modules() if isinstance(module, nn.ReLU)]
    try:
        model.train()  # BatchNorm on the batch's statistics, as at the start of training
        model(images)
    finally:
        for hook in hooks:
            hook.remove()
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else float("-inf")


def naswot(trainer: ChildTrainer, network: Architecture, batch_size: int | None = None) -> tuple[float, float]:
    """The NASWOT score of ``network`` as the trainer would initialise it (its seed), on the first minibatch of its
    training split, and the seconds it took (building the network included)."""
    start = time.perf_counter()
    size = min(batch_size or trainer.config.batch_size, trainer.n_train)
    data = trainer.data
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(trainer.config.seed)
        model: nn.Module = build_network(network.network, data.n_classes, data.image_size, trainer.config.network)
    model = to_device(model, trainer.device)
    score = naswot_score(model, trainer._inputs(trainer.train_x[:size]))
    return score, time.perf_counter() - start
