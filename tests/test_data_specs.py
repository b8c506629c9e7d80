"""The dataset specs in envs_data: each Meta-Dataset set with its published counts and checkable sources."""

from __future__ import annotations

import hashlib
import re

import pytest
from support import OMNIGLOT_DIR, needs_omniglot

from nasgym.core.datasets import dataset_names, get_dataset
from nasgym.core.datasets.builders import BUILDERS
from nasgym.core.datasets.specs import get_spec, spec_names
from nasgym.core.errors import DatasetError

# The Meta-Dataset sets as NasGym used them (Triantafillou et al. 2018), plus Omniglot's two small background archives.
COUNTS = {
    "omniglot": (1623, 32460),
    "vgg_flower": (102, 8189),
    "dtd": (47, 5640),
    "aircraft": (100, 10000),
    "cu_birds": (200, 11788),
    "omniglot_small1": (136, 2720),
    "omniglot_small2": (156, 3120),
}


def test_every_dataset_is_specified_with_its_counts_and_registered():
    assert sorted(COUNTS) == spec_names()
    for name, counts in COUNTS.items():
        spec = get_spec(name)
        assert (spec.classes, spec.images) == counts
        assert spec.builder in BUILDERS and spec.license and spec.homepage.startswith("https://")
        assert name in dataset_names()


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_archives_have_a_source_and_a_digest_or_say_why_not(name: str):
    for archive in get_spec(name).archives:
        assert archive.url.startswith(("https://", "http://")) and archive.name
        if archive.sha256 is None or archive.size is None:
            assert archive.note and "sha256" in archive.note
        else:
            assert re.fullmatch(r"[0-9a-f]{64}", archive.sha256) and archive.size > 0


@pytest.mark.parametrize("name", ["omniglot_small1", "omniglot_small2"])
@needs_omniglot
def test_the_small_omniglot_digests_are_those_of_the_real_archives(name: str):
    (archive,) = get_spec(name).archives
    path = OMNIGLOT_DIR / archive.name
    assert path.stat().st_size == archive.size and hashlib.sha256(path.read_bytes()).hexdigest() == archive.sha256


def test_flower_names_are_the_102_species():
    names = get_spec("vgg_flower").class_names
    assert len(names) == len(set(names)) == 102 and names[0] == "pink primrose"


def test_unknown_names_list_what_exists():
    with pytest.raises(DatasetError, match=r"unknown dataset 'cifar'.*dtd.*folder:"):
        get_dataset("cifar")
    with pytest.raises(DatasetError, match=r"no dataset 'digits' to prepare; preparable datasets: aircraft"):
        get_spec("digits")
