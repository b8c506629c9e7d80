"""Bad arguments to the dataset API are one-line nasgym errors that say what is allowed, never tracebacks."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from PIL import Image
from support import TINY

import nasgym  # noqa: F401
from nasgym.core.datasets import get_dataset, load_dataset
from nasgym.core.errors import ConfigError, DatasetError

NOBODY = 65534


def make_folder(root: Path, classes: tuple[str, ...] = ("a", "b"), per_class: int = 3) -> Path:
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (12, 10), (60 * k, 100, 20 * i)).save(root / name / f"{i}.png")
    return root


@pytest.mark.parametrize("dataset", [None, 123, 4.5, ["digits"]])
def test_a_dataset_that_is_not_a_name_says_what_a_dataset_is(dataset: object):
    for call in (lambda: get_dataset(dataset), lambda: load_dataset(dataset, 8)):
        with pytest.raises(ConfigError) as error:
            call()
        message = str(error.value)
        assert "\n" not in message and f"got {dataset!r}" in message
        assert "digits" in message and "folder:/path/to/images" in message


def test_a_path_is_taken_as_a_folder_of_images(tmp_path: Path):
    folder = make_folder(tmp_path / "pets")
    data = load_dataset(folder, 8)
    assert data.name == f"folder:{folder}" and len(data) == 6 and data.n_classes == 2
    assert data.fingerprint == load_dataset(f"folder:{folder}", 8).fingerprint


@pytest.mark.parametrize("size", [0, -3, 16.0, "16", True, None, 100_000])
def test_image_sizes_that_cannot_work_are_refused_with_the_allowed_range(size: object):
    with pytest.raises(ConfigError) as error:
        load_dataset("digits", size)
    message = str(error.value)
    largest = int(re.search(r"from 1 to (\d+) for digits", message).group(1))
    assert "\n" not in message and f"got {size!r}" in message
    assert 1000 < largest < 100_000  # 1,797 images: thousands of pixels fit, 100000 (54 TB) does not
    if size == 100_000:
        assert "1,797 images x 100000 x 100000 x 3 = 53,910,000,000,000 bytes" in message


def test_image_sizes_of_numpy_ints_work():
    assert load_dataset("digits", np.int64(8), max_samples=np.int32(40)).images.shape == (40, 8, 8, 3)


def test_the_env_refuses_a_bad_image_size_as_a_config_error():
    with pytest.raises(ConfigError, match="image_size must be at least 1 pixel, got 0"):
        gym.make("NAS-v0", dataset="digits", **{**TINY, "image_size": 0})
    with pytest.raises(ConfigError, match="image_size must be a whole number of pixels from 1 to"):
        gym.make("NAS-v0", dataset="digits", **{**TINY, "image_size": 100_000})


@pytest.mark.parametrize("max_samples", [0, 1, -5, 2.5, "10", True])
def test_max_samples_must_be_an_int_of_at_least_two(max_samples: object):
    with pytest.raises(ConfigError, match=r"max_samples must be an int of at least 2, or None") as error:
        load_dataset("digits", 8, max_samples=max_samples)
    assert f"got {max_samples!r}" in str(error.value)


@contextmanager
def unprivileged() -> Iterator[None]:
    """Run the block as user nobody when we are root, whom permission bits never stop."""
    if os.geteuid() != 0:
        yield
        return
    try:
        os.setegid(NOBODY)
        os.seteuid(NOBODY)
    except (AttributeError, PermissionError) as error:
        pytest.skip(f"running as root and cannot drop privileges to test permissions: {error}")
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A temporary folder that user nobody can traverse (pytest's own is private to its user)."""
    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o755)
        yield Path(directory)


def test_a_class_folder_that_cannot_be_read_says_so(open_tmp: Path):
    folder = make_folder(open_tmp / "pets", classes=("a", "b", "c"))
    os.chmod(folder, 0o755)
    for name in ("a", "b", "c"):
        os.chmod(folder / name, 0o755)
    os.chmod(folder / "b", 0o000)
    try:
        with unprivileged(), pytest.raises(DatasetError) as error:
            get_dataset(f"folder:{folder}")
    finally:
        os.chmod(folder / "b", 0o755)
    message = str(error.value)
    assert f"class folder {folder / 'b'} cannot be read" in message and "holds no images" not in message


def test_an_image_that_cannot_be_read_says_so(open_tmp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = make_folder(open_tmp / "pets")
    for path in (folder, *folder.rglob("*")):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    os.chmod(folder / "a" / "1.png", 0o000)
    home = open_tmp / "home"
    home.mkdir(mode=0o777)
    os.chmod(home, 0o777)
    monkeypatch.setenv("NASGYM_HOME", str(home))
    with unprivileged(), pytest.raises(DatasetError, match=f"image {folder / 'a' / '1.png'} cannot be read"):
        load_dataset(f"folder:{folder}", 8)
