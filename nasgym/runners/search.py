"""Run an architecture search with any agent and leave complete, resumable output in one folder.

``DIR/run.json`` the settings, ``DIR/episodes.csv`` every step, ``DIR/progress.csv`` the agent's training
metrics, ``DIR/tensorboard/`` the same as TensorBoard events, ``DIR/agent.pt`` the checkpoint (taken at
episode ends, at most every ``checkpoint_seconds``, and at the end), ``DIR/summary.json`` the best
architectures and ``DIR/search.png`` the rewards over the search.

``resume=True`` continues from the checkpoint: rows after it are dropped and redone, and their rewards come
back from the reward cache. A checkpoint holds the agent's whole state (weights, optimiser, random generators,
unfinished batches), so the redone steps are the ones that were lost.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
from tqdm.auto import tqdm

import agents
from nasgym.core.errors import NasGymError
from nasgym.core.evaluator import network_of
from nasgym.core.search_space import Architecture
from nasgym.runners.episode_log import EpisodeLogger, truncate_csv

CHECKPOINT = "agent.pt"
RUN_FILE = "run.json"
EPISODES = "episodes.csv"


@dataclass
class SearchSettings:
    """What defines a search; stored in run.json so that ``--resume`` continues the same one."""

    agent: str
    dataset: str
    steps: int
    env_options: dict[str, Any] = field(default_factory=dict)
    agent_options: dict[str, Any] = field(default_factory=dict)


class ProgressLog:
    """progress.csv and TensorBoard: agent metrics per update, reward and best reward per step."""

    def __init__(self, out_dir: Path, resume_step: int):
        from torch.utils.tensorboard import SummaryWriter  # imported late: TensorBoard is slow to import

        self.path = out_dir / "progress.csv"
        self.rows = truncate_csv(self.path, resume_step) if resume_step else []
        self.fieldnames = list(self.rows[0]) if self.rows else ["step"]
        if not self.rows:  # an agent without updates (random search) still leaves the file
            self.path.write_text("step\n")
        self.tensorboard = SummaryWriter(str(out_dir / "tensorboard"), purge_step=resume_step + 1)

    def update(self, metrics: dict[str, float]) -> None:
        self.rows.append(metrics)
        new_columns = [name for name in metrics if name not in self.fieldnames]
        self.fieldnames += new_columns
        with open(self.path, "w" if new_columns else "a", newline="") as handle:
            writer = csv.DictWriter(handle, self.fieldnames)
            if new_columns:  # a metric appeared (e.g. the first loss): rewrite with the wider header
                writer.writeheader()
                writer.writerows(self.rows)
            else:
                writer.writerow(metrics)
        for name, value in metrics.items():
            if name != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                self.tensorboard.add_scalar(f"agent/{name}", value, metrics["step"])

    def step(self, step: int, reward: float, best: float) -> None:
        self.tensorboard.add_scalar("search/reward", reward, step)
        self.tensorboard.add_scalar("search/best_reward", best, step)

    def close(self) -> None:
        self.tensorboard.close()


def _resume_step(out_dir: Path, settings: SearchSettings, resume: bool) -> int:
    """Check the folder against ``settings``; the step of the checkpoint to resume from (0: a fresh start)."""
    run_file = out_dir / RUN_FILE
    if not resume:
        if (out_dir / EPISODES).exists():
            raise NasGymError(f"{out_dir} already holds a search; pass --resume to continue it or choose another --out")
        return 0
    if not run_file.exists():
        raise NasGymError(f"{out_dir} holds no search to resume ({RUN_FILE} is missing); drop --resume to start one")
    stored = json.loads(run_file.read_text())
    current = json.loads(json.dumps(asdict(settings)))  # as stored: tuples become lists
    mismatched = [key for key in ("agent", "dataset", "env_options", "agent_options") if stored[key] != current[key]]
    if mismatched:
        raise NasGymError(
            f"--resume with different settings than {run_file} ({', '.join(mismatched)}); "
            "repeat the original options or start a new search in another --out"
        )
    checkpoint = out_dir / CHECKPOINT
    return int(_checkpoint_steps(checkpoint)) if checkpoint.exists() else 0


def _checkpoint_steps(path: Path) -> int:
    """Steps of this search the checkpoint has seen (not the agent's lifetime count: it may come from an
    earlier search, as in transfer experiments)."""
    import torch

    payload = torch.load(path, map_location="cpu", weights_only=False)
    return payload.get("metadata", {}).get("search_steps", payload["num_timesteps"])


def run_search(
    out_dir: str | Path,
    settings: SearchSettings,
    resume: bool = False,
    progress: bool = True,
    checkpoint_seconds: float = 10.0,
    env: gym.Env | None = None,
    start_from: str | Path | None = None,
    learn: bool = True,
) -> dict[str, Any]:
    """Search for ``settings.steps`` environment steps in total and return the summary.

    ``env`` replaces ``gym.make("NAS-v0", dataset=..., **env_options)`` (e.g. one with a custom evaluator).
    ``start_from`` begins with a saved agent (a policy trained elsewhere; a new trial starts) instead of a
    new one, and ``learn=False`` runs its policy frozen (``agent.play``). Interrupted (Ctrl-C), it still
    writes the summary of the steps so far, then re-raises.
    """
    out_dir = Path(out_dir)
    agents.make_config(settings.agent, **settings.agent_options)  # bad hyperparameters fail before any work
    start_step = _resume_step(out_dir, settings, resume)
    if env is None:
        env = gym.make("NAS-v0", dataset=settings.dataset, **settings.env_options)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RUN_FILE).write_text(json.dumps(asdict(settings), indent=2))  # on resume the budget may grow
    env = EpisodeLogger(env, out_dir / EPISODES, resume_step=start_step)
    checkpoint = out_dir / CHECKPOINT
    try:
        if start_step:
            agent = agents.load(checkpoint, env)
        elif start_from is not None:
            agent = agents.load(start_from, env)
            agent.reset_trial()  # a new dataset is a new trial
        else:
            agent = agents.make(settings.agent, env, **settings.agent_options)
    except BaseException:
        env.close()
        raise
    log = ProgressLog(out_dir, start_step)
    agent.update_listener = lambda metrics: log.update({**metrics, "step": env.step_count})
    bar = tqdm(total=settings.steps, initial=start_step, desc=f"{settings.agent} on {settings.dataset}",
               unit="step", disable=not progress, dynamic_ncols=True)  # fmt: skip
    last_save = time.monotonic()

    def on_step(event: dict[str, Any]) -> None:
        nonlocal last_save
        bar.update(1)
        log.step(env.step_count, event["reward"], env.best_reward)
        bar.set_postfix(best=f"{env.best_reward:.4f}", arch=event["info"].get("architecture", ""))
        if event["terminated"] and time.monotonic() - last_save >= checkpoint_seconds:
            agent.save(checkpoint, {"search_steps": env.step_count})  # the agent is done with this step
            last_save = time.monotonic()

    try:
        remaining = settings.steps - start_step
        if remaining > 0:
            (agent.learn if learn else agent.play)(remaining, callback=on_step)
        agent.save(checkpoint, {"search_steps": env.step_count})
    except KeyboardInterrupt:
        write_summary(out_dir, settings)
        raise
    finally:
        bar.close()
        log.close()
        env.close()
    return write_summary(out_dir, settings)


def write_summary(out_dir: Path, settings: SearchSettings) -> dict[str, Any]:
    """summary.json and search.png from the episodes CSV."""
    with open(out_dir / EPISODES, newline="") as handle:
        rows = list(csv.DictReader(handle))
    summary = summarise(rows, settings)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    if rows:
        plot_search(rows, out_dir / "search.png", f"{settings.agent} on {settings.dataset}")
    return summary


def summarise(rows: list[dict[str, str]], settings: SearchSettings, top: int = 10) -> dict[str, Any]:
    """Best architectures and what the search spent, computed from the episodes CSV rows alone."""
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["valid"] != "True" or row["accuracy"] in ("", "None"):
            continue
        network = str(network_of(Architecture.parse(row["architecture"])))
        accuracy = float(row["accuracy"])
        if network not in best or accuracy > best[network]["reward"]:
            best[network] = {"architecture": network or "(empty)", "reward": accuracy,
                             "parameters": int(row["parameters"]), "first_step": int(row["step"])}  # fmt: skip
    ranked = sorted(best.values(), key=lambda entry: (-entry["reward"], entry["first_step"]))
    return {
        "agent": settings.agent,
        "dataset": settings.dataset,
        "steps": len(rows),
        "episodes": len({row["episode"] for row in rows}),
        "unique_networks": len(best),
        "trained": sum(row["trained"] == "True" for row in rows),
        "train_seconds": sum(float(row["train_seconds"]) for row in rows if row["trained"] == "True"),
        "best": ranked[:top],
    }


def plot_search(rows: list[dict[str, str]], path: Path, title: str) -> None:
    """Reward of every rewarded step (all of them with per_step rewards, episode ends with final rewards) and the
    best so far, against the step."""
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    steps = [int(row["step"]) for row in rows]
    rewarded = [row for row in rows if row["accuracy"] not in ("", "None")]
    figure = Figure(figsize=(8, 4), layout="constrained")
    axes = figure.subplots()
    axes.scatter([int(row["step"]) for row in rewarded], [float(row["reward"]) for row in rewarded], s=6,
                 alpha=0.4, label="reward")  # fmt: skip
    axes.step(steps, [float(row["best_reward"]) for row in rows], where="post", color="C3", label="best so far")
    axes.set(xlabel="environment step", ylabel="reward (accuracy)", title=title)
    axes.legend(loc="lower right")
    figure.savefig(path, dpi=100)
