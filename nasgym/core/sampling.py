"""Valid networks drawn at random: the warm-up of the shared weights draws them uniformly, ``nasgym fidelity``
draws a sample stratified by depth. One rule for both, so "a random network" means the same everywhere."""

from __future__ import annotations

import numpy as np

from nasgym.core.errors import ConfigError
from nasgym.core.search_space import TERMINAL_ACTION, Architecture, action_mask


def random_network(
    rng: np.random.Generator, image_size: int, max_layers: int, depth: int | None = None
) -> Architecture:
    """A valid network of ``depth`` computing layers (uniform in 1..max_layers when None), each layer drawn
    uniformly from those that keep it valid at ``image_size``. A 1x1 convolution always fits, so every depth up to
    ``max_layers`` is reachable."""
    if depth is None:
        depth = int(rng.integers(1, max_layers + 1))
    if not 1 <= depth <= max_layers:
        raise ValueError(f"depth must be in 1..{max_layers}, got {depth}")
    network = Architecture(())
    for _ in range(depth):
        mask = action_mask(network, image_size, max_layers + 1)  # +1: the terminal row is never reached here
        mask[TERMINAL_ACTION] = False
        network = network.append(int(rng.choice(np.flatnonzero(mask))))
    return network


def stratified_networks(
    n: int, seed: int, image_size: int, max_layers: int, max_tries: int = 1000
) -> list[Architecture]:
    """``n`` distinct valid networks, depths taken in turn from 1..max_layers (an equal share of each depth, the
    shallow ones being few), each network drawn with ``random_network``; seeded, so a run can be repeated. When
    ``max_tries`` draws in a row find nothing new the space is (nearly) exhausted: a ConfigError, not a long wait."""
    rng = np.random.default_rng(seed)
    found: dict[str, Architecture] = {}
    depths = list(range(1, max_layers + 1))
    tries = last_new = 0
    while len(found) < n:
        tries += 1
        if tries - last_new > max_tries:
            raise ConfigError(
                f"found only {len(found)} distinct valid networks of the {n} asked for at image size {image_size} "
                f"and {max_layers} layers; ask for fewer"
            )
        network = random_network(rng, image_size, max_layers, depths[tries % len(depths)])
        if str(network) not in found:
            found[str(network)], last_new = network, tries
    return list(found.values())
