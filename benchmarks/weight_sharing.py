"""A weight-sharing step against a trained-reward step, for the same networks in one run on one machine.

For a fixed set of architectures (1 to 8 layers, conv-heavy and pool-heavy) it times, in the same process and at
the same image size: the trained reward (``TrainingEvaluator``, no cache: the child trained from scratch at the
budget given, NasGym's 12 epochs by default) and the weight-sharing reward (``reward_source="weight_sharing"``
with its defaults unless flags change them: k minibatches through the network, then scored on the fixed sample),
after a warm-up whose seconds are reported apart. Prints the seconds per step of each and the ratio
trained / weight sharing (the goal: >= 100), and writes JSON:

    python benchmarks/weight_sharing.py --dataset omniglot_small1 --image-size 28 \
        --out benchmarks/results/weight_sharing_cpu.json
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads, as `import nasgym` does (README)

import argparse
import platform
import statistics
import time
from pathlib import Path

import gymnasium as gym
import torch

import nasgym  # noqa: F401  (registers NAS-v0)
from nasgym.core.search_space import Architecture
from nasgym.runners.experiments.records import write_json

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ARCHITECTURES = (
    "c3",
    "c1-c1",
    "c5-m2",
    "c3-c3-m2",
    "m2-c3-c5",
    "c3-a2-c3-m2",
    "c1-c3-c5-m2-c3",
    "c3-c3-m2-c3-c3-a2-c1-c1",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--epochs", type=int, default=12, help="the trained reward's epochs (default 12, NasGym's)")
    parser.add_argument("--max-samples", type=int, default=None)
    parser.add_argument("--ws-steps", type=int, default=None, help="k (default: the keyword's default)")
    parser.add_argument("--ws-valid-samples", type=int, default=None)
    parser.add_argument("--ws-head", choices=("gap", "per_shape"), default=None)
    parser.add_argument("--ws-warmup", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5, help="weight-sharing steps timed per network (median)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None, help="JSON path")
    args = parser.parse_args()
    common = {"dataset": args.dataset, "image_size": args.image_size, "device": args.device,
              "max_samples": args.max_samples}  # fmt: skip
    networks = [Architecture.parse(text) for text in ARCHITECTURES]
    networks = [n for n in networks if n.is_valid(args.image_size)]
    given = (("steps", args.ws_steps), ("valid_samples", args.ws_valid_samples), ("head", args.ws_head))
    ws_options = {f"ws_{k}": v for k, v in given}
    ws_options = {k: v for k, v in ws_options.items() if v is not None}
    shared = gym.make("NAS-v0", reward_source="weight_sharing", ws_warmup=args.ws_warmup, **ws_options, **common)
    evaluator = shared.unwrapped.evaluator
    start = time.perf_counter()
    evaluator.warm_up()
    warmup = time.perf_counter() - start
    trained_env = gym.make("NAS-v0", cache=False, epochs=args.epochs, **common)
    trainer = trained_env.unwrapped.evaluator
    rows = []
    for network in networks:
        ws_seconds = []
        for _ in range(args.repeats):
            evaluation = evaluator.evaluate([network])[0]
            ws_seconds.append(evaluation.train_seconds)
        trained = trainer.evaluate([network])[0]
        ws = statistics.median(ws_seconds)
        rows.append({"architecture": str(network), "trained_seconds": trained.train_seconds,
                     "trained_accuracy": trained.accuracy, "ws_seconds": ws, "ws_accuracy": evaluation.accuracy,
                     "ratio": trained.train_seconds / ws})  # fmt: skip
        print(f"{network!s:<28} trained {trained.train_seconds:7.2f} s  weight sharing {ws * 1000:7.1f} ms  "
              f"ratio {trained.train_seconds / ws:7.1f}")  # fmt: skip
    trained_mean = statistics.mean(r["trained_seconds"] for r in rows)
    ws_mean = statistics.mean(r["ws_seconds"] for r in rows)
    ws_config = evaluator.ws
    result = {
        "what": "seconds per rewarded step, trained reward vs weight sharing, same networks and image size",
        "options": {
            **common,
            "epochs": args.epochs,
            "ws_steps": ws_config.ws_steps,
            "ws_head": ws_config.ws_head,
            "ws_valid_samples": ws_config.ws_valid_samples,
            "ws_warmup": args.ws_warmup,
        },
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "architectures": rows,
        "trained_seconds_mean": trained_mean,
        "ws_seconds_mean": ws_mean,
        "ratio_of_means": trained_mean / ws_mean,
        "ws_warmup_seconds": warmup,
        "goal": ">= 100x cheaper per step at the same image size",
    }
    ratio = trained_mean / ws_mean
    print(f"mean: trained {trained_mean:.2f} s, weight sharing {ws_mean * 1000:.1f} ms per step: ratio {ratio:.1f} "
          f"(goal >= 100); warm-up of {args.ws_warmup} networks {warmup:.1f} s")  # fmt: skip
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
