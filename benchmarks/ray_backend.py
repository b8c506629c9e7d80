"""What the Ray backend costs and gives on one machine, against the local evaluator in the same run.

1. Dispatch overhead: tiny networks evaluated one at a time (as a per-step search asks for them), each trained
   by the local evaluator on one thread and by a Ray task asking for one CPU (one thread too, so the training
   itself is the same work); the overhead per network is the difference (goal: under 20 ms).
2. Throughput: one batch of 16 small networks, trained by two Ray workers of one thread each against one local
   evaluator on two threads; the ratio is local seconds / Ray seconds, whatever it is.

A local Ray instance with 2 CPUs is started, or ``--address`` joins a running cluster (then the Ray side of
the throughput is the whole cluster's; its resources are recorded). Ray's start and the workers' first, cold
tasks are reported apart;
warm-up networks, distinct from the measured ones, start the workers and build their trainers first. No reward
cache is used, so every network is trained. Results go to JSON:

    python benchmarks/ray_backend.py --out benchmarks/results/ray_backend_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from nasgym.core.datasets import load_dataset
from nasgym.core.evaluator import TrainingEvaluator
from nasgym.core.ray_backend import RayEvaluator
from nasgym.core.search_space import N_ACTIONS, Architecture
from nasgym.core.training import TrainConfig
from nasgym.runners.experiments.records import cpu_name, write_json

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TINY = {"image_size": 16, "max_samples": 200, "config": TrainConfig(epochs=1, batch_size=64)}
SMALL = {"image_size": 28, "max_samples": None, "config": TrainConfig(epochs=2, batch_size=128)}


def networks(count: int, image_size: int, skip: int = 0) -> list[Architecture]:
    """``count`` distinct valid networks of one or two layers, in a fixed order (after the first ``skip``)."""
    found = []
    for first in range(N_ACTIONS - 1):
        for second in [None, *range(N_ACTIONS - 1)]:
            actions = (first,) if second is None else (first, second)
            architecture = Architecture(actions)
            if architecture.is_valid(image_size, 10):
                found.append(architecture)
    if len(found) < skip + count:
        raise SystemExit(f"only {len(found)} networks fit {image_size} px")
    return found[skip : skip + count]


def one_at_a_time(evaluator: TrainingEvaluator, batch: list[Architecture]) -> list[float]:
    seconds = []
    for network in batch:
        start = time.perf_counter()
        evaluator.evaluate([network])
        seconds.append(time.perf_counter() - start)
    return seconds


def timed_batch(evaluator: TrainingEvaluator, batch: list[Architecture]) -> float:
    start = time.perf_counter()
    evaluator.evaluate(batch)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", type=int, default=16, help="networks per measurement (default 16)")
    parser.add_argument("--address", default=None, help="a running cluster ('auto', HOST:PORT); default: a local one")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/...)")
    args = parser.parse_args()
    import ray
    import torch  # after nasgym, which sets OMP_WAIT_POLICY for torch as the Ray workers have it

    result: dict = {
        "machine": {"cpu": cpu_name(), "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()},
        "versions": {"ray": ray.__version__, "torch": torch.__version__},
    }
    start = time.perf_counter()
    if args.address is None:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=args.address, log_to_driver=False)
    result["ray_start_seconds"] = time.perf_counter() - start
    result["ray_resources"] = {
        name: ray.cluster_resources()[name] for name in ("CPU", "GPU") if name in ray.cluster_resources()
    }

    # 1. dispatch overhead on tiny networks, one at a time, one thread on both sides
    data = load_dataset("digits", TINY["image_size"], TINY["max_samples"])
    measured, warm_up = networks(args.networks, TINY["image_size"]), networks(2, TINY["image_size"], args.networks)
    remote = RayEvaluator(data, TINY["config"], "cpu", task_cpus=1)
    start = time.perf_counter()
    remote.evaluate(warm_up)  # cold: two workers start, import torch and build their trainers
    result["ray_first_batch_seconds"] = time.perf_counter() - start
    torch.set_num_threads(1)
    local = TrainingEvaluator(data, TINY["config"], "cpu")
    local.evaluate(warm_up)
    local_seconds, ray_seconds = one_at_a_time(local, measured), one_at_a_time(remote, measured)
    overhead = [(r - lo) * 1000 for r, lo in zip(ray_seconds, local_seconds, strict=True)]
    result["dispatch"] = {
        "networks": len(measured),
        "budget": f"digits {TINY['max_samples']} images at {TINY['image_size']} px, 1 epoch, batch 64",
        "local_ms_median": statistics.median(local_seconds) * 1000,
        "ray_ms_median": statistics.median(ray_seconds) * 1000,
        "overhead_ms_median": statistics.median(overhead),
        "overhead_ms_mean": statistics.fmean(overhead),
        "goal_ms": 20,
    }

    # 2. throughput: 16 small networks as one batch, 2 Ray workers x 1 thread vs 1 local evaluator x 2 threads
    data = load_dataset("digits", SMALL["image_size"], SMALL["max_samples"])
    measured, warm_up = networks(args.networks, SMALL["image_size"]), networks(2, SMALL["image_size"], args.networks)
    remote = RayEvaluator(data, SMALL["config"], "cpu", task_cpus=1)
    remote.evaluate(warm_up)  # the workers build trainers for this dataset
    torch.set_num_threads(2)
    local = TrainingEvaluator(data, SMALL["config"], "cpu")
    local.evaluate(warm_up[:1])
    local_batch, ray_batch = timed_batch(local, measured), timed_batch(remote, measured)
    result["throughput"] = {
        "networks": len(measured),
        "budget": f"digits, all {len(data)} images at {SMALL['image_size']} px, 2 epochs, batch 128",
        "local_seconds_2_threads": local_batch,
        "ray_seconds_1_thread_per_task": ray_batch,
        "ratio_local_over_ray": local_batch / ray_batch,
    }
    ray.shutdown()
    print(json.dumps(result, indent=2))
    dispatch, throughput = result["dispatch"], result["throughput"]
    print(
        f"dispatch overhead per network: {dispatch['overhead_ms_median']:.1f} ms median "
        f"({dispatch['overhead_ms_mean']:.1f} ms mean; goal < 20 ms); "
        f"throughput ratio local/Ray for {throughput['networks']} networks: {throughput['ratio_local_over_ray']:.2f}"
    )
    out = args.out or RESULTS_DIR / f"ray_backend_{time.strftime('%Y%m%d-%H%M%S')}.json"
    write_json(out, result)


if __name__ == "__main__":
    main()
