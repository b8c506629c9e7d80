"""Observation encodings: every one round-trips an architecture, and ``nasgym`` is NasGym's own matrix."""

from __future__ import annotations

import numpy as np
import pytest
from support import toy_env

from nasgym.core import observation
from nasgym.core.search_space import Architecture, action_mask

# nas-dmrl's network_evaluation.py writes this network as NSC rows, bottom-aligned as its environment kept them.
NASGYM_EXAMPLE = np.array(
    [[0, 0, 0, 0, 0]] * 5 + [[1, 1, 3, 0, 0], [2, 1, 3, 1, 0], [3, 1, 3, 2, 0], [4, 2, 2, 3, 0], [5, 2, 3, 4, 0]]
)


def random_networks(count: int, seed: int = 0) -> list[Architecture]:
    rng, networks = np.random.default_rng(seed), []
    for _ in range(count):
        architecture = Architecture(())
        while not (architecture.is_terminated or len(architecture) >= 10):
            networks.append(architecture)
            architecture = architecture.append(int(rng.choice(np.flatnonzero(action_mask(architecture, 84)))))
        networks.append(architecture)
    return networks


@pytest.mark.parametrize("kind", observation.OBSERVATIONS)
def test_every_encoding_round_trips_an_architecture_one_at_a_time_and_in_batches(kind: str) -> None:
    networks = random_networks(40)
    nsc = np.stack([network.nsc(10) for network in networks])
    encoded = observation.encode(kind, nsc)
    space = observation.observation_space(kind, 10)
    assert all(space.contains(one) for one in encoded)
    assert (observation.to_nsc(kind, encoded, 10) == nsc).all()
    assert all((observation.to_nsc(kind, one, 10) == row).all() for one, row in zip(encoded, nsc, strict=True))


def test_the_nasgym_encoding_is_nasgyms_one_hot_matrix_with_the_newest_layer_last() -> None:
    network = Architecture.parse("c3-c3-c3-m2-m3-t")
    matrix = observation.encode("nasgym", network.nsc(10))
    assert matrix.shape == (10, 25) and matrix.dtype == np.float32
    assert (matrix.sum(axis=1) == 3).all()  # one type, one kernel, one predecessor per row, empty rows too
    rows = [(row[:8].argmax(), row[8:14].argmax(), row[14:].argmax()) for row in matrix]
    expected = [(kind, kernel, pred) for _, kind, kernel, pred, _ in NASGYM_EXAMPLE[1:]] + [(7, 0, 0)]
    assert rows == expected  # NasGym's rows, shifted up by the terminal row, whose predecessor is 0
    assert (observation.to_nsc("nasgym", matrix, 10) == network.nsc(10)).all()


def test_the_environment_gives_the_nasgym_observation_and_its_agents_read_it() -> None:
    env = toy_env(observation="nasgym")
    first, _ = env.reset()
    assert first.shape == (10, 25) and first[:, 0].all()  # every row empty: type 0
    obs, *_ = env.step(1)
    assert obs[-1, 1] == 1 and obs[-1, 8 + 3] == 1 and obs[:-1, 0].all()
    space = env.unwrapped.space_model
    assert space.feature_size == 250 and (space.features(obs) == obs.reshape(-1)).all()
    assert space.actions(obs) == (1,)
