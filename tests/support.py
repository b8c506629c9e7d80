"""What several test modules share that is not a fixture: tiny budgets, toy rewards, the real Omniglot archives.

Test modules import this module, never each other. Fixtures live in conftest.py.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import os
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from matplotlib.pyplot import imread
from PIL import Image

from nasgym.core.datasets.specs import DatasetSpec, get_spec
from nasgym.core.evaluator import FunctionEvaluator
from nasgym.core.search_space import Architecture
from nasgym.runners.cli import main

REPO = Path(__file__).resolve().parents[1]

TINY = {"epochs": 1, "image_size": 16, "batch_size": 64, "device": "cpu"}
"""A child-training budget that takes well under a second per network on two CPU cores."""

OMNIGLOT_DIR = Path(os.environ.get("NASGYM_TEST_OMNIGLOT") or REPO.parent / "shared" / "data" / "omniglot")
"""The two small official Omniglot archives: beside the clone (../shared/data/omniglot) or $NASGYM_TEST_OMNIGLOT."""
OMNIGLOT_ARCHIVES = ("images_background_small1.zip", "images_background_small2.zip")
needs_omniglot = pytest.mark.skipif(
    not all((OMNIGLOT_DIR / name).is_file() for name in OMNIGLOT_ARCHIVES),
    reason=f"the real Omniglot archives are not in {OMNIGLOT_DIR} (set NASGYM_TEST_OMNIGLOT to their folder)",
)

TARGET = Architecture.parse("c3-c3-m2-c5")


def toy_reward(network: Architecture) -> float:
    """1.0 for TARGET only; otherwise the share of positions that match it (longer networks are diluted)."""
    matches = sum(a == b for a, b in zip(network.actions, TARGET.actions, strict=False))
    return matches / max(len(network), len(TARGET))


def toy_env(reward: str = "per_step", image_size: int = 84, reward_fn=toy_reward, **options) -> gym.Env:
    """NAS-v0 whose reward is ``reward_fn`` of the network, through the documented evaluator hook."""
    evaluator = FunctionEvaluator(reward_fn, image_size=image_size)
    return gym.make("NAS-v0", evaluator=evaluator, reward=reward, image_size=image_size, **options)


class CtrlCEvaluator(FunctionEvaluator):
    """The toy reward, but Ctrl-C arrives while the ``after``-th architecture would be evaluated."""

    def __init__(self, after: int):
        super().__init__(toy_reward)
        self.left = after

    def evaluate(self, architectures):
        self.left -= len(architectures)
        if self.left < 0:
            raise KeyboardInterrupt
        return super().evaluate(architectures)


class CtrlCAtStep(gym.Wrapper):
    """Ctrl-C arrives during step number ``step`` (while its network would be trained or scored)."""

    def __init__(self, env: gym.Env, step: int):
        super().__init__(env)
        self.steps_left = step

    def step(self, action):
        self.steps_left -= 1
        if self.steps_left == 0:
            raise KeyboardInterrupt
        return self.env.step(action)


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


SMALL1 = OMNIGLOT_ARCHIVES[0]
Mount = Callable[..., Path]
"""The ``small_disk`` fixture: ``small_disk(size, read_only=False)`` returns the folder of a new small tmpfs."""


def run_command(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=False)


def leftovers(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.name.startswith((".incomplete-", "tmp")) or ".tmp" in path.name]


def fill(disk: Path) -> Path:
    """Take every free byte of ``disk``, as another program writing there would."""
    filler = disk / "other-program.bin"
    with open(filler, "ab", buffering=0) as file:  # unbuffered: nothing left to flush at close
        try:
            while True:
                file.write(b"\0" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC
    return filler


def assert_png_with_data(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    # Something was drawn: many distinct colours, not a blank canvas.
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 20, path


# -- small archives in the original layouts of the Meta-Dataset sets ----------------------------
PALETTE = np.array([(220, 30, 30), (30, 200, 40), (40, 60, 220), (230, 200, 20)])
GREY = (128, 128, 128)


def jpeg(color: tuple[int, ...], size: tuple[int, int] = (32, 24), box: tuple[int, ...] | None = None) -> bytes:
    """A JPEG filled with ``color``; with ``box`` (x0, y0, x1, y1), grey outside it and a black banner below."""
    image = Image.new("RGB", size, color if box is None else GREY)
    if box is not None:
        image.paste(tuple(color), box)
        image.paste((0, 0, 0), (0, size[1] - 8, size[0], size[1]))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=95, subsampling=0)  # 4:4:4: no colour bleeding at box edges
    return out.getvalue()


def write_tar(path: Path, members: dict[str, bytes], compress: bool = True) -> Path:
    with tarfile.open(path, "w:gz" if compress else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def own_spec(name: str, manual: Path, classes: int, images: int, **changes) -> DatasetSpec:
    """The real spec with our archives' sizes and digests (and, for aircraft, its real null digest kept)."""
    spec = get_spec(name)
    archives = {}
    for archive in spec.archives:
        data = (manual / archive.name).read_bytes()
        archives[archive.name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        if archive.sha256 is None:
            archives[archive.name] = {}
    return replace(spec.with_archives(archives), classes=classes, images=images, **changes)


def make_dtd(manual: Path, corrupt: str | None = None) -> dict[str, list[str]]:
    classes = ["banded", "dotted", "zigzagged"]
    files = [f"{c}/{c}_{i:04d}.jpg" for c in classes for i in range(1, 5)]
    folds = {"train": files[0::3], "validation": files[1::3], "test": files[2::3]}
    members = {"dtd/labels/labels_joint_anno.txt": b"ignored\n", "dtd/labels/train2.txt": b"banded/x.jpg\n"}
    for file in files:
        data = jpeg(tuple(PALETTE[classes.index(file.split("/")[0])]), size=(24 + len(members), 20))
        members[f"dtd/images/{file}"] = data[: len(data) // 2] if file == corrupt else data
    for split, key in (("train", "train1"), ("validation", "val1"), ("test", "test1")):
        members[f"dtd/labels/{key}.txt"] = "".join(f"{f}\n" for f in folds[split]).encode()
    # DTD's .tar.gz is really an uncompressed tar (tfds notes the same): the reader must not trust the name.
    write_tar(manual / "dtd-r1.0.1.tar.gz", members, compress=False)
    return folds


TINY_FLAGS = ["--epochs", "1", "--image-size", "16", "--batch-size", "64", "--max-samples", "150", "--device", "cpu"]
"""Command-line flags for a child training that takes a second."""


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    """Runs the CLI in-process and asserts it failed with exit 2 and one line on stderr, no traceback."""
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse's usage errors exit from inside parse_args
        code = stop.code
    error = capsys.readouterr().err
    assert code == 2, error
    assert len(error.strip().splitlines()) == 1 and "Traceback" not in error, error
    return error


def colour_folder(root: Path, per_class: int = 12) -> Path:
    """A folder dataset of three classes of solid-colour images (red, green, blue): learnable in one epoch."""
    for name, colour in {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (18 + i, 18), colour).save(root / name / f"{i}.png")
    return root


class ReadyRay:
    """Ray's ``wait`` and ``get`` for tasks whose result is ready at once: the object reference is the Evaluation."""

    @staticmethod
    def wait(refs, num_returns):
        return refs[:num_returns], refs[num_returns:]

    @staticmethod
    def get(ref):
        return ref
