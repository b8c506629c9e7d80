"""The NSC, the spatial-size rule, validity, masks and architecture strings, against hand-computed values."""

import numpy as np
import pytest

from nasgym.core.errors import ArchitectureError
from nasgym.core.search_space import ACTIONS, N_ACTIONS, TERMINAL_ACTION, Architecture, action_mask, output_size


@pytest.mark.parametrize(
    ("text", "image_size", "sides"),
    [
        # conv k: s - k + 1; pool k: floor((s - k) / k) + 1
        ("c3-m2-c5-a3-t", 84, [84, 82, 41, 37, 12]),
        ("c5-c5-c5-c5", 84, [84, 80, 76, 72, 68]),
        ("m3-m3-m3-m3", 84, [84, 28, 9, 3, 1]),
        ("a2-c1-m3-c3", 84, [84, 42, 42, 14, 12]),
        ("c5-m3-m3-m3-m3", 84, [84, 80, 26, 8, 2, 0]),  # the last pool does not fit: invalid
        ("m2-m2-m2-m2-m2-m2-m2", 84, [84, 42, 21, 10, 5, 2, 1, 0]),
        ("c5-c5-c3", 10, [10, 6, 2, 0]),
        ("t", 84, [84]),
    ],
)
def test_spatial_sizes_match_hand_computation(text, image_size, sides):
    architecture = Architecture.parse(text)
    assert architecture.spatial_sizes(image_size) == sides
    assert architecture.is_valid(image_size) == (min(sides) >= 1)


def test_pool_with_window_larger_than_input_is_invalid():
    assert output_size(ACTIONS[4], 2) == 0  # m3 on a 2x2 map
    assert output_size(ACTIONS[3], 2) == 1  # m2 on a 2x2 map


def test_nsc_rows_form_a_chain():
    nsc = Architecture.parse("c3-m2-a3-t").nsc(max_layers=6)
    expected = np.array(
        [[1, 1, 3, 0, 0], [2, 2, 2, 1, 0], [3, 3, 3, 2, 0], [4, 7, 0, 3, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
    )
    np.testing.assert_array_equal(nsc, expected)
    assert str(Architecture.from_nsc(nsc)) == "c3-m2-a3-t"


def test_every_action_round_trips_through_string_and_nsc():
    rng = np.random.default_rng(0)
    for _ in range(50):
        actions = tuple(int(a) for a in rng.integers(0, TERMINAL_ACTION, size=rng.integers(0, 9)))
        architecture = Architecture((*actions, TERMINAL_ACTION))
        assert Architecture.parse(str(architecture)) == architecture
        assert Architecture.from_nsc(architecture.nsc(10)) == architecture


@pytest.mark.parametrize(
    ("text", "message"),
    [("c3-x2", "unknown layer 'x2'"), ("c4", "unknown layer 'c4'"), ("c3-t-c3", "must be last")],
)
def test_malformed_strings_say_what_is_wrong(text, message):
    with pytest.raises(ArchitectureError, match=message):
        Architecture.parse(text)


def test_malformed_nsc_and_actions_are_rejected():
    with pytest.raises(ArchitectureError, match="not a chain row"):
        Architecture.from_nsc([[1, 1, 3, 0, 0], [3, 2, 2, 1, 0]])
    with pytest.raises(ArchitectureError, match="unsupported layer"):
        Architecture.from_nsc([[1, 1, 4, 0, 0]])
    with pytest.raises(ArchitectureError, match=r"not in 0\.\.7"):
        Architecture((1, 8))


def test_masks_agree_with_validity_everywhere():
    """For many prefixes: an action is allowed exactly when appending it leaves a valid network."""
    rng = np.random.default_rng(1)
    for image_size in (84, 16, 5):
        for _ in range(200):
            prefix = Architecture(())
            for _ in range(rng.integers(0, 9)):
                growing = np.flatnonzero(action_mask(prefix, image_size)[:TERMINAL_ACTION])
                if len(growing) == 0:
                    break
                prefix = prefix.append(int(rng.choice(growing)))
            mask = action_mask(prefix, image_size)
            assert mask[TERMINAL_ACTION]
            for action in range(N_ACTIONS):
                assert mask[action] == prefix.append(action).is_valid(image_size), (str(prefix), action)


def test_mask_on_a_tiny_map_allows_only_what_fits():
    prefix = Architecture.parse("m2-m2-m2-m2-m2")  # 84 -> 42 -> 21 -> 10 -> 5 -> 2
    assert prefix.spatial_sizes()[-1] == 2
    np.testing.assert_array_equal(action_mask(prefix), [True, False, False, True, False, True, False, True])
