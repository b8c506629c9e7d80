"""Protocols: named bundles of settings for searches, benchmarks, transfer and final training.

``modern`` is this package's protocol and ``nasgym2019`` NasGym's code as it ran; both live in
``envs_data/protocols.json``. A protocol is plain data (NAS-v0 keywords, agent hyperparameters, step budgets), so
the environment, the agents and the command line read the same values: ``nasgym --protocol NAME`` applies one,
and flags given on the command line override it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import envs_data
from nasgym.core import settings

DEFAULT_PROTOCOL = "modern"
NASGYM_PROTOCOL = "nasgym2019"


@dataclass(frozen=True)
class Protocol:
    """One protocol of ``envs_data/protocols.json``."""

    name: str
    about: str
    env: dict[str, Any] = field(default_factory=dict)
    """NAS-v0 keywords of every run."""
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per agent: ``hyperparameters``, ``env`` (NAS-v0 keywords for that agent only) and ``steps`` per dataset."""
    bench: dict[str, Any] = field(default_factory=dict)
    """``nasgym bench agents`` options: ``datasets``, ``agents``."""
    transfer: dict[str, Any] = field(default_factory=dict)
    """``nasgym transfer`` options: ``agent``, ``train``, ``eval``, ``steps_eval``."""
    final: dict[str, Any] = field(default_factory=dict)
    """``nasgym final``: ``env`` (NAS-v0 keywords on top of ``env``), ``repeats``, ``baseline``."""

    def hyperparameters(self, agent: str) -> dict[str, Any]:
        return copy.deepcopy(self.agents.get(agent, {}).get("hyperparameters", {}))

    def agent_env(self, agent: str) -> dict[str, Any]:
        """The NAS-v0 keywords a run of ``agent`` uses: the protocol's, then the agent's own."""
        return {**copy.deepcopy(self.env), **copy.deepcopy(self.agents.get(agent, {}).get("env", {}))}

    def steps(self, agent: str, dataset: str) -> int | None:
        """The protocol's step budget for ``agent`` on ``dataset``, if it has one."""
        return self.agents.get(agent, {}).get("steps", {}).get(dataset)

    def final_env(self) -> dict[str, Any]:
        return {**copy.deepcopy(self.env), **copy.deepcopy(self.final.get("env", {}))}


def protocol_names() -> list[str]:
    return sorted(name for name in envs_data.load("protocols") if not name.startswith("_"))


def protocol(name: str = DEFAULT_PROTOCOL) -> Protocol:
    """The protocol called ``name``; an unknown name is a ConfigError that lists the known ones."""
    known = protocol_names()
    if name not in known:
        raise settings.unknown_name_error(name, known, "protocol")
    data = copy.deepcopy(envs_data.load("protocols")[name])
    return Protocol(name=name, **data)
