"""``folder:/path`` datasets: a user's own images, one subfolder per class, through the same image cache."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from PIL import Image
from support import TINY

import nasgym  # noqa: F401
from nasgym.core.datasets import get_dataset, load_dataset
from nasgym.core.errors import DatasetError

COLOURS = {"cats": (200, 40, 40), "dogs": (40, 200, 40), "owls": (40, 40, 200)}


def make_folder(root: Path, per_class: int = 6) -> Path:
    """Class folders of solid-colour images in mixed formats, modes and sizes (one nested a level deeper)."""
    for k, (name, colour) in enumerate(COLOURS.items()):
        (root / name / "more").mkdir(parents=True)
        for i in range(per_class):
            image = Image.new("RGB", (20 + 3 * i, 16 + k), colour)
            folder = root / name / ("more" if i == 0 else "")
            if i % 3 == 0:
                image.save(folder / f"{i}.png")
            elif i % 3 == 1:
                image.save(folder / f"{i}.JPG", quality=95)
            else:
                image.convert("P").save(folder / f"{i}.gif")  # a palette image: must come out as RGB colours
    (root / "cats" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    return root


def test_classes_are_subfolders_and_labels_follow_them(tmp_path: Path):
    folder = make_folder(tmp_path / "pets")
    data = load_dataset(f"folder:{folder}", 10)
    assert data.name == f"folder:{folder}" and data.n_classes == 3 and len(data) == 18
    assert np.bincount(data.labels).tolist() == [6, 6, 6]
    colours = np.array(list(COLOURS.values()))
    assert np.abs(data.images.astype(int) - colours[data.labels][:, None, None, :]).max() < 12


def test_the_cache_is_reused_and_rebuilt_when_the_folder_changes(tmp_path: Path):
    folder = make_folder(tmp_path / "pets")
    first = load_dataset(f"folder:{folder}", 10)
    images_file = get_dataset(f"folder:{folder}").cache_root() / "10px" / "images.npy"
    stamp = images_file.stat().st_mtime_ns
    second = load_dataset(f"folder:{folder}", 10)
    assert isinstance(second.images, np.memmap) and second.fingerprint == first.fingerprint
    assert images_file.stat().st_mtime_ns == stamp
    Image.new("RGB", (9, 9), COLOURS["owls"]).save(folder / "owls" / "new.png")
    third = load_dataset(f"folder:{folder}", 10)
    assert len(third) == 19 and third.fingerprint != first.fingerprint


def test_cached_images_pickle_as_their_cache_until_it_is_rebuilt(tmp_path: Path):
    folder = make_folder(tmp_path / "pets")
    data = load_dataset(f"folder:{folder}", 32)
    blob = pickle.dumps(data)
    assert len(blob) < data.images.nbytes / 4  # the cache's place, not its pixels
    again = pickle.loads(blob)
    assert isinstance(again.images, np.memmap) and np.array_equal(again.images, data.images)
    assert again.fingerprint == data.fingerprint and np.array_equal(again.labels, data.labels)
    subset = load_dataset(f"folder:{folder}", 32, max_samples=6)  # a copy in memory: pickled as pixels
    assert np.array_equal(pickle.loads(pickle.dumps(subset)).images, subset.images)

    Image.new("RGB", (9, 9), COLOURS["owls"]).save(folder / "owls" / "new.png")
    load_dataset(f"folder:{folder}", 32)  # rebuilds the cache with the new image
    with pytest.raises(DatasetError, match="was removed or rebuilt since this environment was pickled"):
        pickle.loads(blob)


def test_a_corrupt_image_is_reported_by_path_and_leaves_no_cache(tmp_path: Path):
    folder = make_folder(tmp_path / "pets")
    broken = folder / "dogs" / "broken.jpg"
    broken.write_bytes((folder / "dogs" / "1.JPG").read_bytes()[:40])
    with pytest.raises(DatasetError, match=f"corrupt image {broken}"):
        load_dataset(f"folder:{folder}", 10)
    cache_root = get_dataset(f"folder:{folder}").cache_root()
    assert cache_root.is_dir() and not list(cache_root.iterdir())  # neither a cache nor a half-written one
    os.remove(broken)
    assert len(load_dataset(f"folder:{folder}", 10)) == 18


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda root: root / "absent", "is not a folder"),
        (lambda root: make_folder(root / "one") / "dogs" / "more", "has 0 class folder"),
        (lambda root: (root / "two" / "a").mkdir(parents=True) or root / "two", "holds no images"),
    ],
)
def test_unusable_folders_say_what_is_wrong(tmp_path: Path, setup, message: str):
    with pytest.raises(DatasetError, match=message):
        get_dataset(f"folder:{setup(tmp_path)}")


def test_the_env_trains_on_a_folder(tmp_path: Path):
    folder = make_folder(tmp_path / "pets", per_class=12)
    env = gym.make("NAS-v0", dataset=f"folder:{folder}", reward="final", **TINY)
    env.reset(seed=0)
    for action in (1, 3, 7):
        _, reward, terminated, _, info = env.step(action)
    assert terminated and info["failure"] == "" and reward > 0.5  # solid colours: easy, chance is 1/3
