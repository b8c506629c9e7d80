"""Child training: nasgym's trainer against a naive PyTorch reference, in the same run, on the same data.

    python benchmarks/child_training.py --device cuda --dataset-size omniglot       # the issue's GPU goal
    python benchmarks/child_training.py --device cpu --images 600 --epochs 1          # minutes on 2 cores

For every architecture of a fixed set (shallow to 10 layers, conv-heavy and pool-heavy; seeded random
ones top it up when some do not fit the image size) it trains

  (a) a naive reference, written the way most PyTorch code is: fp32, the data as a float tensor in CPU
      memory behind a shuffling DataLoader, ``.to(device)`` per batch, eager, ``torch.optim.Adam`` with
      its defaults and ``StepLR``; and
  (b) nasgym's ``ChildTrainer``,

with the same architecture, data, split, epochs, batch size, schedule and seed, alternating which goes
first. It prints per architecture and in total: seconds, images/s (training images, epochs x train
split, per second of the whole train-and-evaluate call), the ratio (a)/(b) and both accuracies. Then it
evaluates the whole set through ``TrainingEvaluator`` one after another and ``--concurrency`` at a time
(no cache) and compares total images/s. Everything is written as JSON to benchmarks/results/.

Data: synthetic 84x84x3 images of the sizes of omniglot_small1, dtd or omniglot (``--dataset-size``),
learnable (a smooth random prototype per class plus noise), or a registered dataset (``--dataset``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from nasgym.core.datasets import ImageData, fingerprint_arrays, load_dataset, resize_images
from nasgym.core.errors import NasGymError
from nasgym.core.evaluator import TrainingEvaluator
from nasgym.core.network import build_network
from nasgym.core.search_space import TERMINAL_ACTION, Architecture, action_mask
from nasgym.core.training import ChildTrainer, TrainConfig, resolve_device, split_for
from nasgym.core.training.device import available_cpus, limit_threads
from nasgym.runners.experiments.records import cpu_name, write_json

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# Shallow to 10 layers (the terminal row counts), conv-heavy and pool-heavy; all valid at 84x84.
ARCHITECTURES = (
    "c3",  # 1 layer and a 215M-parameter head: with per-step rewards every episode starts with one of these
    "m2-c3-a2",  # pool first
    "c3-c3-m2-c3-c3-m2-c3-c3-m2",  # the 9-layer conv-heavy child
    "m2-m2-a2-m2-t",  # pooling only
    "c1-c3-c5-m3-c3-a2",  # mixed kernels
    "c5-c5-a3-c3-c3-m2-c1-c3-c1-t",  # 10 rows, conv-heavy
    "a2-c3-c3-m2-c3-m3-c1-a2-c1",  # 9 layers, pool-heavy
    "c5-m3",  # shallow, a 22M-parameter head
)
NINE_LAYER_CHILD = "c3-c3-m2-c3-c3-m2-c3-c3-m2"

# Sizes of Meta-Dataset sets NasGym trained on (images, classes), for synthetic data of the same shape.
DATASET_SIZES = {"omniglot_small1": (2720, 136), "dtd": (5640, 47), "omniglot": (32460, 1623)}


def synthetic_data(n_images: int, n_classes: int, image_size: int = 84, seed: int = 0) -> ImageData:
    """Learnable stand-in data: a smooth random prototype per class, each image that plus uniform noise."""
    rng = np.random.default_rng(seed)
    prototypes = resize_images(rng.integers(0, 256, (n_classes, 6, 6, 3), dtype=np.uint8), image_size)
    labels = (np.arange(n_images) % n_classes).astype(np.int64)
    rng.shuffle(labels)
    images = np.empty((n_images, image_size, image_size, 3), dtype=np.uint8)
    for start in range(0, n_images, 1024):
        chunk = labels[start : start + 1024]
        noise = rng.integers(-64, 65, (len(chunk), image_size, image_size, 3), dtype=np.int16)
        images[start : start + 1024] = np.clip(prototypes[chunk].astype(np.int16) + noise, 0, 255)
    name = f"synthetic-{n_images}x{n_classes}"
    return ImageData(name, images, labels, n_classes, fingerprint_arrays(images, labels))


class NaiveReference:
    """The training loop of most PyTorch code (the official tutorials' shape), nasgym's network and settings.

    One deliberate kindness: no ``loss.item()`` per step, so it is not slowed by a host sync each step.
    """

    def __init__(self, data: ImageData, config: TrainConfig, device: torch.device):
        self.data, self.config, self.device = data, config, device
        train_idx, eval_idx, _ = split_for(data, config)
        images = torch.from_numpy(data.images).permute(0, 3, 1, 2).float().div(255).contiguous()
        labels = torch.from_numpy(data.labels)
        self.train_set = TensorDataset(images[train_idx], labels[train_idx])
        self.eval_set = TensorDataset(images[eval_idx], labels[eval_idx])

    def train(self, architecture: Architecture) -> float:
        cfg = self.config
        torch.manual_seed(cfg.seed)
        model = build_network(architecture, self.data.n_classes, self.data.image_size, cfg.network).to(self.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, betas=cfg.betas, eps=cfg.adam_epsilon)
        scheduler = (
            torch.optim.lr_scheduler.StepLR(optimizer, cfg.lr_decay_epochs, cfg.lr_decay_factor)
            if cfg.lr_decay_epochs
            else None
        )
        generator = torch.Generator().manual_seed(cfg.seed)
        loader = DataLoader(self.train_set, batch_size=cfg.batch_size, shuffle=True, generator=generator)
        for _ in range(cfg.epochs):
            model.train()
            for images, labels in loader:
                images, labels = images.to(self.device), labels.to(self.device)
                optimizer.zero_grad()
                loss = F.cross_entropy(model(images), labels)
                loss.backward()
                optimizer.step()
            if scheduler is not None:
                scheduler.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for images, labels in DataLoader(self.eval_set, batch_size=cfg.batch_size):
                predictions = model(images.to(self.device)).argmax(dim=1)
                correct += (predictions == labels.to(self.device)).sum().item()
        return correct / len(self.eval_set)


def architecture_set(count: int, image_size: int, max_layers: int = 10, seed: int = 0) -> list[Architecture]:
    """The fixed set (those valid at ``image_size``), topped up with seeded random valid architectures."""
    chosen = [Architecture.parse(text) for text in ARCHITECTURES]
    chosen = [a for a in chosen if a.is_valid(image_size, max_layers)][:count]
    rng = np.random.default_rng(seed)
    while len(chosen) < count:
        architecture = Architecture(())
        for _ in range(int(rng.integers(1, max_layers + 1))):
            allowed = np.flatnonzero(action_mask(architecture, image_size, max_layers)[:TERMINAL_ACTION])
            if len(allowed) == 0:
                break
            architecture = architecture.append(int(rng.choice(allowed)))
        if architecture.layers and all(str(architecture) != str(a) for a in chosen):
            chosen.append(architecture)
    return chosen


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()}, {available_cpus()} usable CPUs"


def _timed(function, *args):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    value = function(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return value, time.perf_counter() - start


def compare(
    data: ImageData, config: TrainConfig, device: torch.device, architectures: list[Architecture], ablation: bool
) -> dict:
    """Per architecture: (a) naive and (b) nasgym, in turns (which goes first alternates).

    With ``ablation`` on CUDA also nasgym without CUDA graphs ('nasgym_eager'), to see what the graphs add.
    """
    naive = NaiveReference(data, config, device)
    trainers = {"nasgym": ChildTrainer(data, config, device)}
    if ablation and device.type == "cuda":
        trainers["nasgym_eager"] = ChildTrainer(data, config, device, cuda_graphs=False)
    n_train = trainers["nasgym"].n_train
    methods = ["naive", *trainers]
    warmup = Architecture.parse("c3-m2")  # first-use costs (CUDA context, kernels, thread pools) off the clock
    naive.train(warmup)
    for trainer in trainers.values():
        trainer.train(warmup)
    rows = []
    for i, architecture in enumerate(tqdm(architectures, desc="architectures", unit="arch")):
        runs = {}
        for method in methods[i % len(methods) :] + methods[: i % len(methods)]:
            if method == "naive":
                accuracy, seconds = _timed(naive.train, architecture)
                runs[method] = {"seconds": seconds, "accuracy": accuracy}
            else:
                result, seconds = _timed(trainers[method].train, architecture)
                runs[method] = {"seconds": seconds, "accuracy": result.accuracy, "execution": result.execution}
                runs[method]["failure"] = result.failure or None
                parameters = result.parameters
            runs[method]["images_per_s"] = config.epochs * n_train / seconds
        row = {"architecture": str(architecture), "layers": len(architecture), "parameters": parameters}
        row.update({method: runs[method] for method in methods})
        row["ratio"] = runs["naive"]["seconds"] / runs["nasgym"]["seconds"]
        row["accuracy_difference"] = runs["nasgym"]["accuracy"] - runs["naive"]["accuracy"]
        rows.append(row)
        tqdm.write(_row_line(row))
    images = config.epochs * n_train * len(rows)
    total = {}
    for method in methods:
        total[f"{method}_seconds"] = sum(r[method]["seconds"] for r in rows)
        total[f"{method}_images_per_s"] = images / total[f"{method}_seconds"]
        total[f"{method}_mean_accuracy"] = statistics.mean(r[method]["accuracy"] for r in rows)
    total["ratio"] = total["naive_seconds"] / total["nasgym_seconds"]
    total["mean_abs_accuracy_difference"] = statistics.mean(abs(r["accuracy_difference"]) for r in rows)
    # One accuracy's sampling noise on the reward split: differences of a few of these are noise.
    total["accuracy_noise"] = _binomial_noise(total["naive_mean_accuracy"], len(data) - n_train)
    return {"architectures": rows, "total": total, "n_train": n_train, "n_eval": len(data) - n_train}


def batch_evaluation(
    data: ImageData, config: TrainConfig, device: torch.device, architectures: list[Architecture], concurrency: int
) -> dict:
    """The whole set through the evaluator: one after another, then ``concurrency`` at a time."""
    runs = {}
    for workers in (1, concurrency):
        evaluator = TrainingEvaluator(data, config, device, cache=None, concurrency=workers)
        evaluator.trainer.train(Architecture.parse("c3-m2"))  # warm-up off the clock, as above
        evaluations, seconds = _timed(evaluator.evaluate, architectures)
        runs[workers] = (seconds, [e.accuracy for e in evaluations])
    images = config.epochs * round(len(data) * config.train_fraction) * len(architectures)
    (seq_seconds, seq_acc), (con_seconds, con_acc) = runs[1], runs[concurrency]
    return {
        "architectures": len(architectures),
        "concurrency": concurrency,
        "sequential_seconds": seq_seconds,
        "concurrent_seconds": con_seconds,
        "sequential_images_per_s": images / seq_seconds,
        "concurrent_images_per_s": images / con_seconds,
        "ratio": seq_seconds / con_seconds,
        "same_rewards": seq_acc == con_acc,
        "max_abs_reward_difference": max(abs(a - b) for a, b in zip(seq_acc, con_acc, strict=True)),
    }


def _binomial_noise(accuracy: float, n: int) -> float:
    return float(np.sqrt(max(accuracy * (1 - accuracy), 1e-12) / n))


def _row_line(row: dict) -> str:
    a, b = row["naive"], row["nasgym"]
    line = (
        f"{row['architecture']:<32} naive {a['seconds']:8.2f} s {a['images_per_s']:9.0f} img/s acc {a['accuracy']:.3f}"
        f" | nasgym {b['seconds']:8.2f} s {b['images_per_s']:9.0f} img/s acc {b['accuracy']:.3f}"
        f" | ratio {row['ratio']:5.2f}"
    )
    if "nasgym_eager" in row:
        line += f" | without graphs {row['nasgym_eager']['seconds']:.2f} s"
    return line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default auto)")
    data = parser.add_mutually_exclusive_group()
    data.add_argument(
        "--dataset-size",
        choices=sorted(DATASET_SIZES),
        default="omniglot_small1",
        help="synthetic data of this set's size and class count (default omniglot_small1)",
    )
    data.add_argument("--dataset", help="a registered nasgym dataset instead of synthetic data (e.g. digits)")
    parser.add_argument("--data-dir", default=None, help="where prepared datasets live (with --dataset)")
    parser.add_argument("--images", type=int, default=None, help="use only this many images (small CPU runs)")
    parser.add_argument("--image-size", type=int, default=84, help="image side (default 84)")
    parser.add_argument("--epochs", type=int, default=12, help="epochs per child (default 12)")
    parser.add_argument("--batch-size", type=int, default=128, help="(default 128)")
    parser.add_argument("--architectures", type=int, default=8, help="how many architectures (default 8)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="trainings at once in the evaluator pass (default 4 on CUDA, 2 on CPU; 1: skip)",
    )
    parser.add_argument("--ablation", action="store_true", help="on CUDA also time nasgym without CUDA graphs")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for both (default: nasgym's choice)")
    parser.add_argument("--seed", type=int, default=0, help="training and data seed (default 0)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/...)")
    return parser


def main(argv: list[str] | None = None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:  # a missing GPU or an unprepared dataset is one line, not a traceback
        device = resolve_device(args.device)
        if args.dataset:
            data = load_dataset(args.dataset, args.image_size, max_samples=args.images, data_dir=args.data_dir)
        else:
            n_images, n_classes = DATASET_SIZES[args.dataset_size]
            data = synthetic_data(args.images or n_images, n_classes, args.image_size, args.seed)
    except (NasGymError, ValueError) as error:
        parser.error(str(error))
    if args.threads:
        torch.set_num_threads(args.threads)
    limit_threads()  # what ChildTrainer does, done first so that the naive reference gets the same threads
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    architectures = architecture_set(args.architectures, args.image_size, seed=args.seed)
    concurrency = args.concurrency or (4 if device.type == "cuda" else 2)
    print(
        f"{len(data)} images ({data.name}, {data.n_classes} classes, {args.image_size}px), {args.epochs} epochs, "
        f"batch {args.batch_size}, on {device_name(device)}"
    )

    result = {
        "benchmark": "child_training",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": device.type,
        "device_name": device_name(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "data": {"name": data.name, "images": len(data), "classes": data.n_classes, "image_size": args.image_size},
        "config": {**asdict(config), "precision": config.resolved_precision(device)},
        **compare(data, config, device, architectures, args.ablation),
    }
    nine = next((row for row in result["architectures"] if row["architecture"] == NINE_LAYER_CHILD), None)
    if nine is not None:
        result["nine_layer_child"] = {"architecture": NINE_LAYER_CHILD, **{k: nine[k] for k in ("naive", "nasgym")}}
        print(f"9-layer child {NINE_LAYER_CHILD}: nasgym {nine['nasgym']['images_per_s']:.0f} images/s")
    total = result["total"]
    print(
        f"{'total':<32} naive {total['naive_seconds']:8.2f} s {total['naive_images_per_s']:9.0f} img/s "
        f"| nasgym {total['nasgym_seconds']:8.2f} s {total['nasgym_images_per_s']:9.0f} img/s "
        f"| ratio {total['ratio']:5.2f} | mean accuracy {total['naive_mean_accuracy']:.3f} vs "
        f"{total['nasgym_mean_accuracy']:.3f} (noise ~{total['accuracy_noise']:.3f})"
    )
    if concurrency > 1:
        batch = batch_evaluation(data, config, device, architectures, concurrency)
        result["batch_evaluator"] = batch
        print(
            f"evaluator, {batch['architectures']} architectures: one by one {batch['sequential_seconds']:.2f} s, "
            f"{concurrency} at a time {batch['concurrent_seconds']:.2f} s, ratio {batch['ratio']:.2f}, "
            f"same rewards: {batch['same_rewards']}"
        )

    out = args.out or RESULTS_DIR / f"child_training_{device.type}_{datetime.now():%Y%m%d-%H%M%S}.json"
    write_json(out, result)
    return result


if __name__ == "__main__":
    main()
