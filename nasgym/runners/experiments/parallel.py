"""An experiment's searches: one after another in this process, or many at once as Ray tasks (``backend="ray"``).

On Ray every search is a task pinned to this machine (the driver's node) while its networks train as Ray tasks
anywhere on the cluster: the search folders and the reward cache stay on this machine's disk, where the searches
share the cache as processes do (claims: no network is trained twice). A search whose process dies is rerun by
Ray and resumes from its folder's checkpoint, so it loses at most its unfinished episode; a worker node that dies
costs only the trainings it was running, which Ray reruns elsewhere. Rerunning the command continues whatever is
left, with or without Ray.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from nasgym.core.config import LOOKUP_SOURCES
from nasgym.core.datasets import load_dataset
from nasgym.core.errors import NasGymError
from nasgym.core.paths import default_cache_path, default_data_dir
from nasgym.core.training import available_cpus
from nasgym.runners.experiments.records import cpu_name
from nasgym.runners.run_folder import RunFolder
from nasgym.runners.search import SearchSettings, run_search

RUNS_AT_ONCE = 8
"""Searches running at once on Ray by default: each is a process on this machine (a few hundred MB)."""


@dataclass(frozen=True)
class Run:
    """One search of an experiment, and the runs (positions in the experiment's list) it must wait for."""

    folder: Path
    settings: SearchSettings
    label: str
    start_from: Path | None = None
    learn: bool = True
    after: tuple[int, ...] = ()

    def complete(self) -> bool:
        return RunFolder(self.folder).completed_steps() >= self.settings.steps


def execute(run: Run, progress: bool) -> None:
    """One search, resumed where its folder stops; nothing to do when it is complete."""
    if run.complete():
        return
    resume = RunFolder(run.folder).holds_search()
    run_search(run.folder, run.settings, resume=resume, progress=progress, start_from=run.start_from, learn=run.learn)


def run_all(runs: list[Run], progress: bool = True, runs_at_once: int = RUNS_AT_ONCE) -> None:
    """Every run not complete yet, in order here, or as Ray tasks when their environments use the Ray backend, or in
    one process per CPU when every reward comes from a look-up table (the agents' own work is then the cost)."""
    if any(run.settings.typed.env.compute.backend == "ray" for run in runs):
        _run_on_ray(runs, progress, runs_at_once)
        return
    if all(run.settings.typed.env.reward_source in LOOKUP_SOURCES for run in runs) and available_cpus() > 1:
        _run_in_processes(runs, progress, available_cpus())
        return
    for number, run in enumerate(runs, start=1):
        if not run.complete():
            if progress:
                print(f"[{number}/{len(runs)}] {run.label}", flush=True)
            execute(run, progress)


def run_all_timed(runs: list[Run], out_dir: Path, progress: bool = True, runs_at_once: int = RUNS_AT_ONCE) -> dict:
    """``run_all``, returning what running the searches cost on this machine (the measure a time budget is checked
    by, for ``results.json``'s ``machine``); a rerun that found every run complete keeps the figure of the call
    that ran them."""
    earlier = _machine(out_dir)
    todo = sum(not run.complete() for run in runs)
    started = time.perf_counter()
    run_all(runs, progress, runs_at_once)
    seconds = time.perf_counter() - started
    machine = {"runs_wall_seconds": round(seconds, 1), "runs": todo, "cpu": cpu_name(), "cpus": available_cpus()}
    return machine if todo or not earlier else earlier


def _machine(out_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out_dir / "results.json").read_text()).get("machine")
    except (OSError, ValueError, AttributeError):
        return None


def _one_thread() -> None:
    torch.set_num_threads(1)  # one search per CPU


def _run_in_processes(runs: list[Run], progress: bool, workers: int) -> None:
    """The runs in ``workers`` processes, each started once its runs in ``after`` are done (a carried policy)."""
    todo = {number for number, run in enumerate(runs) if not run.complete()}
    done = set(range(len(runs))) - todo
    context = multiprocessing.get_context("spawn")  # no fork of a process that has started threads
    with (
        ProcessPoolExecutor(workers, mp_context=context, initializer=_one_thread) as pool,
        tqdm(total=len(todo), desc="searches", unit="run", disable=not progress) as bar,
    ):
        running: dict[Any, int] = {}
        while todo or running:
            for number in sorted(todo):
                if set(runs[number].after) <= done:
                    todo.discard(number)
                    running[pool.submit(execute, runs[number], False)] = number
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                future.result()  # a failed search stops the experiment with its own error
                done.add(running.pop(future))
                bar.update()


def _run_task(run: Run, datasets: dict[str, Any]) -> None:
    """A Ray task: one search, on the datasets the driver put in the object store."""
    from nasgym.core.ray_backend import adopt_datasets

    adopt_datasets(datasets)
    execute(run, progress=False)


def _pinned(run: Run) -> Run:
    """The run with every path absolute and the cache and data folders spelled out, so that a worker process
    (started from another folder, with another environment) writes where the driver would."""
    env = run.settings.typed.env
    options = dict(run.settings.env_options)  # what run.json stores; the typed configs are parsed again from it
    if env.cache:
        options["cache_path"] = str(Path(env.cache_path or default_cache_path()).resolve())
    options["data_dir"] = str(Path(env.data_dir or default_data_dir()).resolve())
    start_from = run.start_from.resolve() if run.start_from else None
    return replace(
        run, folder=run.folder.resolve(), settings=replace(run.settings, env_options=options), start_from=start_from
    )


def _share_datasets(runs: list[Run]) -> dict[str, Any]:
    """Each dataset the runs train on, loaded here and put in the object store once."""
    from nasgym.core.ray_backend import share_dataset

    refs, seen = {}, set()
    for run in runs:
        config = run.settings.typed.env
        source = (config.dataset, config.image_size, config.max_samples, config.data_dir)
        if source not in seen:
            seen.add(source)
            data = load_dataset(*source)
            refs[data.fingerprint] = share_dataset(data)
    return refs


def _run_on_ray(runs: list[Run], progress: bool, runs_at_once: int) -> None:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from nasgym.core.ray_backend import connect

    first = runs[0].settings.typed.env.compute
    ray = connect(first.ray_address)
    runs = [_pinned(run) for run in runs]
    todo = [number for number, run in enumerate(runs) if not run.complete()]
    finished = set(range(len(runs))) - set(todo)
    datasets = _share_datasets([runs[number] for number in todo])
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    task = ray.remote(_run_task).options(
        num_cpus=0, max_retries=first.ray_max_retries, scheduling_strategy=here, name="nasgym-search"
    )
    running: dict[Any, int] = {}
    bar = tqdm(total=len(runs), initial=len(finished), desc="searches", unit="search", disable=not progress)
    try:
        while todo or running:
            ready = [number for number in todo if set(runs[number].after) <= finished]
            for number in ready[: max(0, runs_at_once - len(running))]:
                todo.remove(number)
                running[task.remote(runs[number], datasets)] = number
                bar.write(f"[{number + 1}/{len(runs)}] {runs[number].label}: started")
            if not running:
                raise NasGymError("the experiment's runs wait for each other in a cycle")  # a bug in the plan
            (done,), _ = ray.wait(list(running), num_returns=1)
            number = running.pop(done)
            try:
                ray.get(done)
            except ray.exceptions.RayTaskError as error:
                if isinstance(error.cause, NasGymError):
                    raise error.cause from None
                raise
            finished.add(number)
            bar.update()
    finally:  # interrupted or failed: the other searches stop as after Ctrl-C, their folders resumable
        for ref in running:
            ray.cancel(ref)
        bar.close()
