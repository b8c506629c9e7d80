"""Run an architecture search with any agent and leave complete, resumable output in one folder (``RunFolder``).

The checkpoint is taken at episode ends, at most every ``checkpoint_seconds``, and at the end. ``resume=True``
continues from it: rows after it are dropped and redone, and their rewards come back from the reward cache. A
checkpoint holds the agent's whole state (weights, optimiser, random generators, unfinished batches), so the
redone steps are the ones that were lost. An evaluator with a state of its own (the shared weights of
``reward_source="weight_sharing"``, whose rewards no cache can give back) is saved in the same file, taken at the
same moment, so the redone steps train and score from the same weights again.

``num_envs`` above 1 runs that many episodes at once in ``NAS-v0``'s vector env, whose copies' networks reach the
evaluator as one batch per step; the log's ``env`` column says which copy took a step. A checkpoint is then taken
after a whole vector step, and a resume puts the copies' unfinished episodes back from the log.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
from tqdm.auto import tqdm

import agents
from agents import checkpoint
from nasgym.core import settings
from nasgym.core.config import BackendConfig, EnvConfig
from nasgym.core.errors import ConfigError, NasGymError
from nasgym.core.protocols import DEFAULT_PROTOCOL
from nasgym.core.training import TrainConfig
from nasgym.runners.curriculum import Curriculum
from nasgym.runners.envs import (
    NAS_V0,
    EnvSettings,
    check_env_id,
    curriculum_env_ids,
    has_curriculum,
    has_vector_env,
)
from nasgym.runners.episode_log import EpisodeLogger, ProgressLog, VectorEpisodeLogger
from nasgym.runners.experiments.plots import plot_search, reward_label
from nasgym.runners.run_folder import EpisodeRow, RunFolder

REWARD_NEUTRAL_OPTIONS = frozenset(
    {"cache", "cache_path", "data_dir", "device"} | {setting.name for setting in settings.settings_of(BackendConfig)}
)
"""Environment options that do not change what a reward is (where children train, where rewards are kept): a
resumed search may change them."""


@dataclass
class SearchSettings:
    """What defines a search; stored in run.json so that ``--resume`` continues the same one."""

    agent: str
    dataset: str
    steps: int
    env_options: dict[str, Any] = field(default_factory=dict)
    agent_options: dict[str, Any] = field(default_factory=dict)
    protocol: str = DEFAULT_PROTOCOL
    """The protocol (``nasgym.core.protocols``) the options came from, named in run.json and every report."""
    num_envs: int = 1
    """Episodes run at once (``--num-envs``): copies of the environment whose networks are evaluated as one batch."""
    env: str = NAS_V0
    """The environment searched (``nasgym.runners.envs.ENV_IDS``)."""
    curriculum: list[int] | None = None
    """``[start, step, every]``: the depth grows during the search (``NAS-ZophLe-v0`` only; ``Curriculum``)."""

    def __post_init__(self) -> None:
        self.typed  # noqa: B018 -- parse the options now: a bad one fails where the settings are made

    @cached_property
    def typed(self) -> EnvSettings:
        """``env_options`` with ``dataset``, parsed once into the typed configs that code reads (``env_options``
        stays what run.json stores; change it with ``dataclasses.replace``, which parses again)."""
        if not isinstance(self.env_options, dict):
            raise ConfigError(f"env_options must be a dict of NAS-v0 keywords, got {type(self.env_options).__name__}")
        return EnvSettings.parse(check_env_id(self.env), {**self.env_options, "dataset": self.dataset})

    @property
    def configs(self) -> tuple[EnvConfig, TrainConfig]:
        """The environment's and the child training's settings (``EnvConfig``, ``TrainConfig``)."""
        return self.typed.configs

    def comparable(self) -> dict[str, Any]:
        """What must match for a search to continue another: every environment option with its default filled
        in (so a run stored before a new option existed still matches), as JSON, without what may change."""
        options = self.typed.flat()
        env_options = {k: v for k, v in options.items() if k not in REWARD_NEUTRAL_OPTIONS | {"dataset"}}
        comparable = {**asdict(self), "env_options": env_options}
        del comparable["steps"]  # the budget may grow
        return json.loads(json.dumps(comparable))


def _resume_step(folder: RunFolder, settings: SearchSettings, resume: bool) -> int:
    """Check the folder against ``settings``; the step of the checkpoint to resume from (0: a fresh start)."""
    if not resume:
        if folder.holds_search():
            raise NasGymError(f"{folder} already holds a search; pass --resume to continue it or choose another --out")
        return 0
    stored = folder.settings()
    if stored is None:
        raise NasGymError(f"{folder} holds no search to resume ({folder.run_file.name} is missing); drop --resume")
    current = settings.comparable()
    try:
        stored = SearchSettings(**stored).comparable()
    except TypeError:
        raise NasGymError(
            f"{folder.run_file} does not hold a search's settings; start a new search elsewhere"
        ) from None
    mismatched = [key for key in current if stored.get(key) != current[key]]
    if mismatched:
        raise NasGymError(
            f"--resume with different settings than {folder.run_file} ({', '.join(mismatched)}); "
            "repeat the original options or start a new search in another --out"
        )
    step = folder.checkpoint_steps()
    logged = len(folder.episodes())
    if logged < step:
        raise NasGymError(
            f"{folder}: the checkpoint is at step {step} but {folder.episodes_file.name} holds {logged} steps, so "
            f"the log and the agent disagree; restore {folder.episodes_file.name}, or start a new search elsewhere"
        )
    return step


def _make_env(settings: SearchSettings) -> gym.Env | gym.vector.VectorEnv:
    """The environment ``settings.env``, or with ``num_envs`` above 1 NAS-v0's vector env (copies sharing one
    evaluator), resetting a copy in the step that ends its episode as agents expect."""
    keywords = _env_keywords(settings)
    if settings.num_envs == 1:
        return gym.make(settings.env, **keywords)
    return gym.make_vec(
        settings.env, num_envs=settings.num_envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP, **keywords
    )


def _env_keywords(settings: SearchSettings) -> dict[str, Any]:
    """NAS-v0 takes the typed configs as they are; another environment its keywords (it may have its own)."""
    if settings.env == NAS_V0:
        return {"env_config": settings.typed.env, "train_config": settings.typed.train}
    return {"dataset": settings.dataset, **settings.env_options}


def _agent(
    settings: SearchSettings,
    env: gym.Env | gym.vector.VectorEnv,
    folder: RunFolder,
    start_step: int,
    start_from: Path | None,
) -> agents.Agent:
    if start_step:  # a checkpoint of another agent is refused before anything is built
        agent = agents.load(folder.checkpoint, env, agent=settings.agent)
        _restore_evaluator(env, folder)
        return agent
    if start_from is not None:
        agent = agents.load(start_from, env, agent=settings.agent, **settings.agent_options)
        agent.reset_trial()  # a new dataset is a new trial
        return agent
    return agents.make(settings.agent, env, **settings.agent_options)


def _stateful_evaluator(env: gym.Env | gym.vector.VectorEnv) -> Any:
    """The environment's evaluator when its rewards depend on a state it holds (not ``stationary``: its
    ``state_dict`` goes into the checkpoint), else None."""
    evaluator = getattr(env.unwrapped, "evaluator", None)
    return evaluator if evaluator is not None and not evaluator.stationary else None


def checkpoint_metadata(env: gym.Env | gym.vector.VectorEnv, steps: int) -> dict[str, Any]:
    """What a search stores beside the agent: the step count and, where it has one, the evaluator's state."""
    evaluator = _stateful_evaluator(env)
    return {"search_steps": steps, **({"evaluator": evaluator.state_dict()} if evaluator is not None else {})}


def _restore_evaluator(env: gym.Env | gym.vector.VectorEnv, folder: RunFolder) -> None:
    evaluator = _stateful_evaluator(env)
    if evaluator is None:
        return
    state = checkpoint.read(folder.checkpoint)["metadata"].get("evaluator")
    if state is None:
        raise NasGymError(
            f"{folder.checkpoint} holds no shared weights, so this weight-sharing search cannot continue exactly; "
            "start a new search in another --out"
        )
    try:
        evaluator.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError) as error:
        raise NasGymError(f"{folder.checkpoint}: its shared weights do not fit these settings ({error})") from None


def run_search(
    out_dir: str | Path,
    settings: SearchSettings,
    resume: bool = False,
    progress: bool = True,
    checkpoint_seconds: float = 10.0,
    env: gym.Env | gym.vector.VectorEnv | None = None,
    start_from: str | Path | None = None,
    learn: bool = True,
) -> dict[str, Any]:
    """Search for ``settings.steps`` environment steps in total and return the summary.

    ``env`` replaces ``gym.make(settings.env, dataset=..., **env_options)`` (e.g. one with a custom evaluator).
    ``start_from`` begins with a saved agent (a policy trained elsewhere; a new trial starts) instead of a
    new one, and ``learn=False`` runs its policy frozen (``agent.play``). Interrupted (Ctrl-C), it still
    writes the summary of the steps so far, then re-raises.
    """
    if not (isinstance(settings.steps, int) and settings.steps >= 1):
        raise ConfigError(f"steps must be a positive number of environment steps, got {settings.steps!r}")
    if not (isinstance(checkpoint_seconds, (int, float)) and checkpoint_seconds >= 0):
        raise ConfigError(f"checkpoint seconds must be a number >= 0, got {checkpoint_seconds!r}")
    num_envs = settings.num_envs
    if not (isinstance(num_envs, int) and not isinstance(num_envs, bool) and num_envs >= 1):
        raise ConfigError(f"num_envs must be a positive number of environment copies, got {num_envs!r}")
    if env is not None and (env.num_envs if isinstance(env, gym.vector.VectorEnv) else 1) != num_envs:
        raise ConfigError(f"num_envs is {num_envs}, but the env given runs {getattr(env, 'num_envs', 1)} copies")
    if not has_vector_env(check_env_id(settings.env)) and num_envs > 1:
        raise ConfigError(f"--num-envs above 1 needs a batched vector env; {settings.env} runs one env (give 1)")
    agent_config = agents.make_config(settings.agent, **settings.agent_options)  # bad ones fail before any work
    curriculum = _curriculum(settings, agent_config)
    folder = RunFolder(out_dir)
    with folder.locked():
        start_step = _resume_step(folder, settings, resume)
        if env is None:
            env = _make_env(settings)
        logged_env: EpisodeLogger | VectorEpisodeLogger
        if isinstance(env, gym.vector.VectorEnv):
            logged_env = VectorEpisodeLogger(env, folder, resume_step=start_step)
        else:
            logged_env = EpisodeLogger(env, folder, resume_step=start_step)
        try:
            agent = _agent(settings, logged_env, folder, start_step, Path(start_from) if start_from else None)
            folder.write_settings(asdict(settings))  # only once the agent exists; on resume the budget may grow
            if curriculum is not None:
                curriculum.check(_grown(env).max_layers, getattr(agent_config, "architectures_per_update", None))
            return _search(
                folder, settings, logged_env, agent, start_step, progress, checkpoint_seconds, learn, curriculum
            )
        finally:
            logged_env.close()


@runtime_checkable
class GrowingEnv(Protocol):
    """An environment whose depth a curriculum grows (a space's ``has_curriculum``)."""

    @property
    def max_layers(self) -> int: ...

    def set_depth(self, layers: int) -> None: ...


def _grown(env: gym.Env | gym.vector.VectorEnv) -> GrowingEnv:
    """The environment under ``env``'s wrappers, whose depth the curriculum sets."""
    unwrapped = env.unwrapped
    if not isinstance(unwrapped, GrowingEnv):
        raise ConfigError(f"a curriculum grows an environment's depth; {unwrapped} has no set_depth and max_layers")
    return unwrapped


def _deepen(env: gym.Env | gym.vector.VectorEnv, curriculum: Curriculum, finished: int) -> None:
    """The depth of the coming episodes once ``finished`` episodes have ended."""
    grown = _grown(env)
    grown.set_depth(curriculum.depth(finished, grown.max_layers))


def _curriculum(settings: SearchSettings, agent_config: Any) -> Curriculum | None:
    if settings.curriculum is None:
        return None
    if not has_curriculum(settings.env):
        growing = " or ".join(curriculum_env_ids())
        raise ConfigError(f"a curriculum grows the depth of {growing}'s networks; {settings.env} has none")
    return Curriculum.of(settings.curriculum)


def _search(
    folder: RunFolder,
    settings: SearchSettings,
    env: EpisodeLogger | VectorEpisodeLogger,
    agent: agents.Agent,
    start_step: int,
    progress: bool,
    checkpoint_seconds: float,
    learn: bool,
    curriculum: Curriculum | None = None,
) -> dict[str, Any]:
    log = ProgressLog(folder, start_step)
    finished = sum(row.terminated for row in folder.episodes()[:start_step])
    if curriculum is not None:
        _deepen(env, curriculum, finished)
    agent.update_listener = lambda metrics: log.update({**metrics, "step": env.step_count})
    bar = tqdm(
        total=settings.steps,
        initial=start_step,
        desc=f"{settings.agent} on {settings.dataset}",
        unit="step",
        disable=not progress,
        dynamic_ncols=True,
    )
    last_save = time.monotonic()

    step = start_step

    def on_step(event: dict[str, Any]) -> None:
        nonlocal last_save, step, finished
        step += 1  # the event's row (the env's count is already past every copy of a vector step)
        bar.update(1)
        if event["terminated"] and curriculum is not None:  # the agent is done with the episode: deepen now
            finished += 1
            _deepen(env, curriculum, finished)
        log.step(step, event["reward"], env.best_at(step))
        bar.set_postfix(best=f"{env.best_at(step):.4f}", arch=event["info"]["architecture"])
        if event["terminated"] and time.monotonic() - last_save >= checkpoint_seconds:
            agent.save(folder.checkpoint, checkpoint_metadata(env, env.step_count))  # the agent is done with this step
            last_save = time.monotonic()

    try:
        remaining = settings.steps - start_step
        if remaining > 0:
            (agent.learn if learn else agent.play)(remaining, callback=on_step)
        agent.save(folder.checkpoint, checkpoint_metadata(env, env.step_count))
    except KeyboardInterrupt:
        write_summary(folder, settings)
        raise
    finally:
        bar.close()
        log.close()
    return write_summary(folder, settings)


def write_summary(folder: RunFolder, settings: SearchSettings) -> dict[str, Any]:
    """summary.json and search.png from the episodes CSV."""
    rows = folder.episodes()
    summary = summarise(rows, settings)
    folder.write_summary(summary)
    if rows:
        env_config, train_config = settings.configs
        label = reward_label(env_config.reward_source, train_config.reward_exponent)
        plot_search(rows, folder.plot_file, f"{settings.agent} on {settings.dataset}", label)
    return summary


def summarise(rows: list[EpisodeRow], settings: SearchSettings, top: int = 10) -> dict[str, Any]:
    """Best architectures and what the search spent, computed from the episodes CSV rows alone."""
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        if not (row.valid and row.rewarded):
            continue
        if row.network not in best or row.accuracy > best[row.network]["reward"]:
            best[row.network] = {
                "architecture": row.network or "(empty)",
                "reward": row.accuracy,
                "parameters": row.parameters,
                "first_step": row.step,
            }
    ranked = sorted(best.values(), key=lambda entry: (-entry["reward"], entry["first_step"]))
    return {
        "agent": settings.agent,
        "dataset": settings.dataset,
        "protocol": settings.protocol,
        "reward_source": settings.typed.env.reward_source,
        "steps": len(rows),
        "episodes": len({row.episode for row in rows}),
        "unique_networks": len(best),
        "trained": sum(row.trained for row in rows),
        "train_seconds": math.fsum(row.train_seconds for row in rows if row.trained),
        "best": ranked[:top],
    }
