"""The search-space protocol: both spaces found by name, their reward keys unchanged, a third space served by the
evaluator and the trainer untouched, and Zoph & Le's package imported by nobody outside it but its registrations."""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from nasgym.core import spaces
from nasgym.core.config import make_configs
from nasgym.core.datasets import ImageData, load_dataset
from nasgym.core.errors import ArchitectureError, ConfigError
from nasgym.core.evaluator import FunctionEvaluator, TrainingEvaluator
from nasgym.core.network import NetworkConfig
from nasgym.core.reward_cache import REWARD_CODE_VERSION
from nasgym.core.search_space import Architecture
from nasgym.core.space_model import ChainSpaceModel
from nasgym.core.training import ChildTrainer, TrainConfig
from nasgym.core.zophle.space import ZophLeArchitecture
from nasgym.core.zophle.space_model import ZophLeSpaceModel
from nasgym.runners import envs

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {"epochs": 12, "seed": 0, "lr": 0.001}
KEYS = {
    "c3": "b82d5d4de9628e8abf80017fd48aa256a5b5bf64c3e9bce18f24f33fac91764b",
    "c3-m2-c5-t": "9af4cc7335839c2cbbe76db39bee861374fb52782cbe134bb7890a7a6060dd4a",
    "c1-a3-m2-c5-c3": "4777dca1f730d85d4abb688a21a23dad662b331dee07081bf9fc584b7a4aaa6e",
    "t": "9a05ab629b0d384eb0a0b4dd678a2a62712208d14c0796f7209dfd5cf007ae1a",
    "3x3x24s1": "82379fda87b41288b22824ab62925650c283766b0c0a8d0a75a6cb3582597782",
    "3x3x24s1-5x5x36s2:1": "2124ed455d5fb287c18a53d85e8250b1129fa66e024c8512f6f4e8d9e7ef0c11",
    "1x7x64s3-3x1x24s1:0-7x7x48s2:11": "956b75fac983c831487e8822df06f8d5d3423b33ad39c881b7ef6fd9ce2c3f65",
    "3x3x24-5x5x36:1": "947a340f8dd62f8ce196ba313863052861d4ed644c714299bafc7bc6a3b425f2",
}
"""Keys computed, with the settings above, by the evaluator before the protocol existed (isinstance switches)."""
PARAMETERS = {
    "c3": 22158277,
    "c3-m2-c5-t": 2687013,
    "3x3x24s1-5x5x36s2:1": 22613,
    "1x7x64s3-3x1x24s1:0-7x7x48s2:11": 209189,
}
"""``FunctionEvaluator(n_classes=5, image_size=28)``'s parameter counts before the protocol existed."""


def toy_data(n: int = 40, side: int = 8) -> ImageData:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8)
    return ImageData("toy", images, np.arange(n) % 2, 2, "fp-toy")


def parse_any(text: str) -> Any:
    return spaces.of_text(text).parse(text)


# -- the registry ---------------------------------------------------------------------------------------------------
def test_the_registry_knows_both_spaces_by_name_and_by_environment():
    assert spaces.names()[:2] == ("chain", "zophle")
    assert spaces.env_ids()[:2] == ("NAS-v0", "NAS-ZophLe-v0")
    for name in ("chain", "zophle"):
        space = spaces.get(name)
        assert isinstance(space, spaces.SearchSpace) and space.name == name
        assert spaces.of_env(space.env_id) is space
    assert ChainSpaceModel.name == "chain" and ZophLeSpaceModel.name == "zophle"
    assert spaces.of(Architecture.parse("c3")).name == "chain"
    assert spaces.of(ZophLeArchitecture.parse("3x3x24s1")).name == "zophle"
    with pytest.raises(ConfigError, match="unknown search space 'nope'"):
        spaces.get("nope")
    with pytest.raises(ConfigError, match="unknown environment 'Nope-v0'"):
        spaces.of_env("Nope-v0")
    with pytest.raises(ArchitectureError, match="expected a network of a search space"):
        spaces.of("c3-m2")


@pytest.mark.parametrize("name", ["chain", "zophle"])
def test_each_space_samples_valid_networks_that_its_text_reads_back(name: str):
    space = spaces.get(name)
    model = space.space_model({"image_size": 16} if name == "chain" else {"layers": 3})
    assert model.name == name
    rng = np.random.default_rng(0)
    for _ in range(20):
        network = space.sample(rng, model)
        assert model.valid(list(network.actions)) and network.network == network
        assert space.parse(str(network)) == network and spaces.of_text(str(network)) is space
        assert envs.network_name(str(network)) == str(network.network)


def test_the_environments_settings_come_from_their_spaces():
    assert envs.has_curriculum("NAS-ZophLe-v0") and not envs.has_curriculum("NAS-v0")
    assert envs.has_vector_env("NAS-v0") and not envs.has_vector_env("NAS-ZophLe-v0")
    assert envs.curriculum_env_ids() == ("NAS-ZophLe-v0",)
    options = {"observation": "onehot", "layers": 3, "epochs": 1}
    assert envs.accepted("NAS-v0", options) == {"observation": "onehot", "epochs": 1}
    assert envs.accepted("NAS-ZophLe-v0", options) == {"layers": 3, "epochs": 1}
    flags = {"reward": "per_step", "max_layers": 10, "layers": 6}
    assert envs.command_line_options("NAS-ZophLe-v0", flags, typed=()) == {"layers": 6}
    assert envs.command_line_options("NAS-ZophLe-v0", flags, typed={"reward"}) == {"reward": "per_step", "layers": 6}


# -- reward keys ----------------------------------------------------------------------------------------------------
def test_reward_keys_are_byte_identical_to_those_before_the_protocol():
    evaluator = TrainingEvaluator(toy_data(), TrainConfig(), "cpu")
    evaluator.settings = SETTINGS
    for text, key in KEYS.items():
        network = parse_any(text)
        assert evaluator.key(network) == spaces.network_key("fp-toy", network.network, SETTINGS) == key, text
    # NAS-v0's payload has no space, Zoph & Le's names it.
    chain = {"dataset": "fp-toy", "nsc": [[1, 1, 3, 0, 0]], "settings": SETTINGS, "reward_code_version": 2}
    assert (
        REWARD_CODE_VERSION == 2
        and KEYS["c3"] == hashlib.sha256(json.dumps(chain, sort_keys=True).encode()).hexdigest()
    )


def test_parameter_counts_are_those_before_the_protocol():
    evaluator = FunctionEvaluator(lambda network: 0.5, n_classes=5, image_size=28)
    for text, parameters in PARAMETERS.items():
        assert evaluator.evaluate([parse_any(text)])[0].parameters == parameters, text


def test_every_space_builds_the_module_whose_parameters_it_counts():
    data = load_dataset("digits", 16, max_samples=60)
    for text in ("c3-m2-c5", "3x3x24s2-5x1x36s1:1-1x1x48s3:01"):
        network = parse_any(text)
        space = spaces.of(network)
        model = space.build(network, data.n_classes, 16, NetworkConfig(), 3, torch.Generator())
        counted = space.parameter_count(network, data.n_classes, 16, NetworkConfig())
        assert counted == sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert model(torch.rand(2, 3, 16, 16)).shape == (2, data.n_classes)


# -- a third space, registered here --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Width:
    """A toy network: one hidden layer of ``units``."""

    units: int
    space = "toy"

    @property
    def network(self) -> Width:
        return self

    def __str__(self) -> str:
        return f"w{self.units}"


class ToySpace:
    name = "toy"
    env_id = "Toy-v0"
    key_space = "toy"
    refused_keywords: Mapping[str, str] = {}
    fixed_keywords: Mapping[str, Any] = {}
    has_curriculum = False
    has_vector_env = False
    reward_sources = frozenset({"trained"})
    action_tokens = None

    def key_payload(self, network: Width) -> list[int]:
        return [network.units]

    def build(self, network, n_classes, image_size, config, in_channels=3, dropout_generator=None) -> nn.Module:
        features = in_channels * image_size * image_size
        return nn.Sequential(
            nn.Flatten(), nn.Linear(features, network.units), nn.ReLU(), nn.Linear(network.units, n_classes)
        )

    def parameter_count(self, network: Width, n_classes: int, image_size: int, config: NetworkConfig) -> int:
        return (3 * image_size * image_size + 1) * network.units + (network.units + 1) * n_classes

    def parse(self, text: str) -> Width:
        return Width(int(text[1:]))

    def claims_text(self, text: str) -> bool:
        return text.startswith("w")

    def network_name(self, text: str) -> str:
        return text

    def make_configs(self, options: dict[str, Any]) -> tuple[None, Any, TrainConfig]:
        return None, *make_configs(options)

    def own_settings(self) -> list:
        return []

    def space_model(self, options: dict[str, Any]) -> Any:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, model: Any) -> Width:
        return Width(int(rng.integers(1, 9)))


@pytest.fixture
def toy_space():
    spaces.register("toy", ToySpace())
    yield spaces.get("toy")
    spaces.unregister("toy")


def test_a_third_space_is_evaluated_keyed_and_trained_through_the_protocol_alone(toy_space):
    assert "toy" in spaces.names() and spaces.of_env("Toy-v0") is toy_space
    with pytest.raises(ConfigError, match="registered already"):
        spaces.register("toy", ToySpace())
    network = Width(4)
    evaluation = FunctionEvaluator(lambda net: net.units / 10, n_classes=2, image_size=8).evaluate([network])[0]
    assert (evaluation.accuracy, evaluation.parameters, evaluation.architecture) == (0.4, 4 * 193 + 10, "w4")
    data = toy_data()
    evaluator = TrainingEvaluator(data, TrainConfig(), "cpu")
    payload = {"dataset": "fp-toy", "nsc": [4], "settings": evaluator.settings}
    payload |= {"reward_code_version": REWARD_CODE_VERSION, "space": "toy"}
    assert evaluator.key(network) == hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    trained = ChildTrainer(data, TrainConfig(epochs=1, batch_size=8), "cpu").train(network)
    assert trained.failure == "" and 0 <= trained.accuracy <= 1 and trained.parameters == 4 * 193 + 10
    assert envs.network_name("w4") == "w4" and envs.check_env_id("Toy-v0") == "Toy-v0"


def test_a_network_of_no_registered_space_is_refused():
    with pytest.raises(ArchitectureError, match="evaluate takes architectures"):
        FunctionEvaluator(lambda net: 0.5).evaluate([Width(3)])


# -- the layering ---------------------------------------------------------------------------------------------------
def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, at module level, in functions or under TYPE_CHECKING."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return found


def test_only_the_registrations_import_zoph_and_les_package():
    allowed = {REPO / "nasgym" / "__init__.py", REPO / "agents" / "zophle_controller.py"}
    offenders = [
        str(path.relative_to(REPO))
        for folder in ("nasgym", "agents")
        for path in (REPO / folder).rglob("*.py")
        if "zophle" not in path.relative_to(REPO).parts[:3]
        and path not in allowed
        and any(name.startswith("nasgym.core.zophle") for name in imports_of(path))
    ]
    assert offenders == []


def test_the_core_has_no_import_circles():
    modules = {".".join(p.relative_to(REPO).with_suffix("").parts): p for p in (REPO / "nasgym" / "core").rglob("*.py")}
    modules = {name.removesuffix(".__init__"): path for name, path in modules.items()}

    def module_of(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {
        name: {module_of(imported) for imported in imports_of(path)} - {None, name} for name, path in modules.items()
    }
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise AssertionError("import circle: " + " -> ".join([*path[path.index(name) :], name]))
        if name not in done:
            for imported in graph.get(name, ()):
                visit(imported, (*path, name))
            done.add(name)

    for name in graph:
        visit(name, ())
