"""Run an architecture search with any agent and leave complete, resumable output in one folder.

``DIR/run.json`` the settings, ``DIR/episodes.csv`` every step, ``DIR/progress.csv`` the agent's training
metrics, ``DIR/tensorboard/`` the same as TensorBoard events, ``DIR/agent.pt`` the last checkpoint (taken
at episode ends), ``DIR/summary.json`` the best architectures. ``resume=True`` continues from the
checkpoint: rows after it are dropped and redone, their rewards come back from the reward cache.
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
from nasgym.episode_log import EpisodeLogger, truncate_csv
from nasgym.errors import NasGymError
from nasgym.evaluator import network_of
from nasgym.search_space import Architecture

CHECKPOINT = "agent.pt"
RUN_FILE = "run.json"


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
        self.fieldnames: list[str] | None = None
        kept = truncate_csv(self.path, resume_step) if resume_step else []
        if kept:
            self.fieldnames = list(kept[0])
        elif self.path.exists():
            self.path.unlink()
        self.tensorboard = SummaryWriter(str(out_dir / "tensorboard"), purge_step=resume_step + 1)

    def update(self, metrics: dict[str, float]) -> None:
        new_file = self.fieldnames is None
        if new_file:
            self.fieldnames = list(metrics)
        with open(self.path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, self.fieldnames, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            writer.writerow(metrics)
        for name, value in metrics.items():
            if name != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                self.tensorboard.add_scalar(f"agent/{name}", value, metrics["step"])

    def step(self, step: int, reward: float, best: float) -> None:
        self.tensorboard.add_scalar("search/reward", reward, step)
        self.tensorboard.add_scalar("search/best_reward", best, step)

    def close(self) -> None:
        self.tensorboard.close()


def _prepare_out_dir(out_dir: Path, settings: SearchSettings, resume: bool) -> int:
    """Check the folder against ``settings``; return the step of the checkpoint to resume from (0: fresh)."""
    run_file = out_dir / RUN_FILE
    if not resume:
        if (out_dir / "episodes.csv").exists():
            raise NasGymError(f"{out_dir} already holds a search; pass --resume to continue it or choose another --out")
        out_dir.mkdir(parents=True, exist_ok=True)
        run_file.write_text(json.dumps(asdict(settings), indent=2))
        return 0
    if not run_file.exists():
        raise NasGymError(f"{out_dir} holds no search to resume ({RUN_FILE} is missing); drop --resume to start one")
    stored = json.loads(run_file.read_text())
    current = asdict(settings)
    mismatched = [key for key in ("agent", "dataset", "env_options", "agent_options") if stored[key] != current[key]]
    if mismatched:
        raise NasGymError(
            f"--resume with different settings than {run_file} ({', '.join(mismatched)}); "
            "repeat the original options or start a new search in another --out"
        )
    run_file.write_text(json.dumps(asdict(settings), indent=2))  # the step budget may grow
    checkpoint = out_dir / CHECKPOINT
    return int(_checkpoint_steps(checkpoint)) if checkpoint.exists() else 0


def _checkpoint_steps(path: Path) -> int:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)["num_timesteps"]


def run_search(
    out_dir: str | Path,
    settings: SearchSettings,
    resume: bool = False,
    progress: bool = True,
    checkpoint_seconds: float = 10.0,
    env: gym.Env | None = None,
) -> dict[str, Any]:
    """Search for ``settings.steps`` environment steps in total and return the summary.

    ``env`` replaces ``gym.make("NAS-v0", dataset=..., **env_options)`` (e.g. one with a custom evaluator).
    """
    out_dir = Path(out_dir)
    start_step = _prepare_out_dir(out_dir, settings, resume)
    if env is None:
        env = gym.make("NAS-v0", dataset=settings.dataset, **settings.env_options)
    env = EpisodeLogger(env, out_dir / "episodes.csv", resume_step=start_step)
    checkpoint = out_dir / CHECKPOINT
    resumed = start_step > 0
    agent = agents.load(checkpoint, env) if resumed else agents.make(settings.agent, env, **settings.agent_options)
    log = ProgressLog(out_dir, start_step)
    agent.update_listener = log.update
    bar = tqdm(total=settings.steps, initial=start_step, desc=f"{settings.agent} on {settings.dataset}",
               unit="step", disable=not progress, dynamic_ncols=True)  # fmt: skip
    last_save = time.monotonic()

    def on_step(event: dict[str, Any]) -> None:
        nonlocal last_save
        bar.update(1)
        log.step(event["step"], event["reward"], env.best_reward)
        bar.set_postfix(best=f"{env.best_reward:.4f}", arch=event["info"].get("architecture", ""))
        if event["terminated"] and time.monotonic() - last_save >= checkpoint_seconds:
            agent.save(checkpoint)
            last_save = time.monotonic()

    try:
        remaining = settings.steps - start_step
        if remaining > 0:
            agent.learn(remaining, callback=on_step)
        agent.save(checkpoint)
    finally:
        bar.close()
        log.close()
        env.close()
    summary = summarise(out_dir / "episodes.csv", settings)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def summarise(episodes_csv: Path, settings: SearchSettings, top: int = 10) -> dict[str, Any]:
    """Best architectures and what the search spent, computed from the episodes CSV alone."""
    with open(episodes_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
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
