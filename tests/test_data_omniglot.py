"""The real Omniglot small archives prepared end to end, read through tfds.data_source, cached, trained on."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import sys
import zipfile
from collections import Counter
from dataclasses import replace
from pathlib import Path, PurePosixPath

import gymnasium as gym
import numpy as np
import pytest
from support import OMNIGLOT_DIR, TINY, needs_omniglot

import nasgym  # noqa: F401
from nasgym.core.datasets import fingerprint_arrays, load_dataset
from nasgym.core.datasets.meta_dataset import MetaDataset
from nasgym.core.datasets.prepare import is_prepared, prepare, prepared_info
from nasgym.core.datasets.specs import get_spec
from nasgym.runners.cli import main

SMALL = {"omniglot_small1": (136, 2720), "omniglot_small2": (156, 3120)}

pytestmark = needs_omniglot


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both small archives prepared once for the whole module, from the real files."""
    directory = tmp_path_factory.mktemp("omniglot_data")
    for name in SMALL:
        prepare(name, directory, manual_dir=OMNIGLOT_DIR, download=False)
    return directory


def zip_characters(archive: Path) -> Counter:
    """Images per ``Alphabet/characterNN`` counted straight from the zip, independently of the builder."""
    parts = [PurePosixPath(n).parts for n in zipfile.ZipFile(archive).namelist() if n.endswith(".png")]
    return Counter(f"{p[1]}/{p[2]}" for p in parts)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_real_archives_prepare_with_the_right_counts_and_labels(data_dir: Path, name: str):
    import tensorflow_datasets as tfds

    classes, images = SMALL[name]
    spec = get_spec(name)
    assert is_prepared(spec, data_dir)
    info = prepared_info(spec, data_dir)
    assert (info["classes"], info["images"], info["splits"]) == (classes, images, {"train": images})
    assert info["archives"][0]["verified"] and info["archives"][0]["sha256"] == spec.archives[0].sha256

    source = tfds.data_source(spec.tfds_name, data_dir=data_dir, download=False)["train"]
    names = source.dataset_info.features["label"].names
    expected = zip_characters(OMNIGLOT_DIR / spec.archives[0].name)
    assert len(source) == images and len(names) == classes and sorted(expected) == names
    seen = Counter()
    for record in source.__getitems__(list(range(0, images, 7))):
        _, alphabet, character, _ = PurePosixPath(record["file_name"].decode()).parts
        assert names[record["label"]] == f"{alphabet}/{character}"  # the label is the character in its alphabet
        assert record["image"].shape == (105, 105, 3) and set(np.unique(record["image"])) <= {0, 255}
        seen[names[record["label"]]] += 1
    assert len(seen) > classes // 2


def test_loading_gives_every_image_once_with_twenty_drawings_per_character(data_dir: Path):
    data = load_dataset("omniglot_small1", 16, data_dir=data_dir)
    assert data.images.shape == (2720, 16, 16, 3) and data.images.dtype == np.uint8
    assert data.n_classes == 136 and np.bincount(data.labels).tolist() == [20] * 136
    assert 0 < data.images.mean() < 255  # white paper, black strokes, grey where resizing blends them


def test_the_memory_mapped_cache_is_reused_without_decoding_again(data_dir: Path):
    first = load_dataset("omniglot_small2", 20, data_dir=data_dir)
    cache = MetaDataset("omniglot_small2", data_dir).cache_root() / "20px"
    stamps = {path.name: path.stat().st_mtime_ns for path in cache.iterdir()}
    assert first.fingerprint == fingerprint_arrays(np.asarray(first.images), first.labels)
    # Remove the prepared records: a second load that still works cannot have decoded anything.
    records = sorted(get_spec("omniglot_small2").prepared_dir(data_dir).glob("*.array_record*"))
    hidden = [path.rename(path.with_name(path.name + ".away")) for path in records]
    try:
        second = load_dataset("omniglot_small2", 20, data_dir=data_dir)
    finally:
        for path in hidden:
            path.rename(path.with_name(path.name.removesuffix(".away")))
    assert isinstance(second.images, np.memmap)
    assert second.fingerprint == first.fingerprint  # read from meta.json, not hashed again
    assert np.array_equal(second.labels, first.labels) and np.array_equal(second.images[::97], first.images[::97])
    assert {path.name: path.stat().st_mtime_ns for path in cache.iterdir()} == stamps


def test_no_tensorflow_anywhere(data_dir: Path):
    load_dataset("omniglot_small1", 16, data_dir=data_dir)
    assert "tensorflow" not in sys.modules and importlib.util.find_spec("tensorflow") is None
    for distribution in ("tensorflow", "tensorflow-cpu", "tf-nightly"):  # what `pip list` would show
        with pytest.raises(importlib.metadata.PackageNotFoundError):
            importlib.metadata.distribution(distribution)


def test_done_when_cli_prepares_offline_and_the_env_learns_above_chance(capsys: pytest.CaptureFixture):
    assert main(["data", "prepare", "omniglot_small1", "--manual-dir", str(OMNIGLOT_DIR), "--no-download"]) == 0
    assert "prepared omniglot_small1: 2,720 images of 136 classes" in capsys.readouterr().out
    # All images in train/reward, the split this bar was set on (20 training images per class are few).
    env = gym.make("NAS-v0", dataset="omniglot_small1", reward="final", test_fraction=0.0, **TINY)
    env.reset(seed=0)
    for action in (1, 3, 7):  # c3-m2-t
        _, reward, terminated, _, info = env.step(action)
    assert terminated and info["failure"] == ""
    assert env.unwrapped.evaluator.data.n_classes == 136
    assert reward > 5 / 136, info  # chance is 1/136 = 0.0074


def test_full_omniglot_puts_both_archives_in_one_label_space(tmp_path: Path):
    """The full set's builder path, fed the two real small archives in the places of background/evaluation."""
    import tensorflow_datasets as tfds

    manual = tmp_path / "manual"
    manual.mkdir()
    roles = {"images_background.zip": "small1", "images_evaluation.zip": "small2"}
    changes = {}
    for target, small in roles.items():
        source = OMNIGLOT_DIR / f"images_background_{small}.zip"
        shutil.copy(source, manual / target)
        changes[target] = {"size": source.stat().st_size, "sha256": get_spec(f"omniglot_{small}").archives[0].sha256}
    characters = zip_characters(manual / "images_background.zip") + zip_characters(manual / "images_evaluation.zip")
    spec = replace(get_spec("omniglot").with_archives(changes), classes=len(characters), images=2720 + 3120)
    prepare(spec, tmp_path / "data", manual, download=False)
    sources = tfds.data_source(spec.tfds_name, data_dir=tmp_path / "data", download=False)
    assert {split: len(source) for split, source in sources.items()} == {"train": 2720, "test": 3120}
    assert sources["test"].dataset_info.features["label"].names == sorted(characters)
    data = load_dataset("omniglot", 12, data_dir=tmp_path / "data")
    assert np.bincount(data.labels, minlength=len(characters)).tolist() == [characters[c] for c in sorted(characters)]
