"""Each builder parses small archives made here in the original layouts: labels, splits, crops are checked.

Every class gets its own solid colour, so a loaded image whose colour is not its label's colour means the
builder read the wrong label file, the wrong column, or (aircraft) did not crop.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from support import PALETTE, jpeg, make_dtd, own_spec, write_tar

import nasgym.runners.cli.data as data_cli
from nasgym.core.datasets import load_dataset
from nasgym.core.datasets.prepare import prepare, prepared_info
from nasgym.core.datasets.specs import DatasetSpec
from nasgym.runners.cli import main


@pytest.fixture
def manual(tmp_path: Path) -> Path:
    """The folder the original archives are written to, as a user's --manual-dir."""
    (tmp_path / "manual").mkdir()
    return tmp_path / "manual"


def splits_of(spec: DatasetSpec, data_dir: Path) -> dict[str, set[str]]:
    import tensorflow_datasets as tfds

    sources = tfds.data_source(spec.tfds_name, data_dir=data_dir, download=False)
    return {split: {record["file_name"].decode() for record in source} for split, source in sources.items()}


def class_names(spec: DatasetSpec, data_dir: Path) -> list[str]:
    import tensorflow_datasets as tfds

    source = next(iter(tfds.data_source(spec.tfds_name, data_dir=data_dir, download=False).values()))
    return source.dataset_info.features["label"].names


def assert_colours_match_labels(name: str, data_dir: Path, n_images: int) -> None:
    data = load_dataset(name, 12, data_dir=data_dir)
    assert len(data) == n_images
    deviation = np.abs(data.images.astype(int) - PALETTE[data.labels][:, None, None, :]).max(axis=(1, 2, 3))
    assert deviation.max() < 24, deviation


def test_dtd_labels_are_folders_and_splits_are_fold_one(tmp_path: Path, manual: Path):
    data_dir = tmp_path / "data"
    folds = make_dtd(manual)
    spec = own_spec("dtd", manual, classes=3, images=12)
    prepare(spec, data_dir, manual, download=False)
    assert splits_of(spec, data_dir) == {s: {f"dtd/images/{f}" for f in files} for s, files in folds.items()}
    assert class_names(spec, data_dir) == ["banded", "dotted", "zigzagged"]
    assert_colours_match_labels("dtd", data_dir, 12)


def test_vgg_flower_labels_come_from_imagelabels_mat_and_splits_from_setid_mat(tmp_path: Path, manual: Path):
    data_dir = tmp_path / "data"
    labels = [3, 1, 2, 2, 3, 1, 1, 2, 3, 3]  # 1-based, as in imagelabels.mat
    members = {f"jpg/image_{i:05d}.jpg": jpeg(tuple(PALETTE[label - 1])) for i, label in enumerate(labels, start=1)}
    write_tar(manual / "102flowers.tgz", members, compress=False)
    scipy.io.savemat(manual / "imagelabels.mat", {"labels": np.array([labels], dtype=np.uint8)})
    setid = {"trnid": [[2, 5, 9]], "valid": [[1, 4, 7]], "tstid": [[3, 6, 8, 10]]}
    scipy.io.savemat(manual / "setid.mat", {key: np.array(ids, dtype=np.uint16) for key, ids in setid.items()})
    spec = own_spec(
        "vgg_flower", manual, classes=3, images=10, class_names=("pink primrose", "hard-leaved", "canterbury")
    )
    prepare(spec, data_dir, manual, download=False)
    expected = {
        split: {f"jpg/image_{i:05d}.jpg" for i in setid[key][0]}
        for split, key in (("train", "trnid"), ("validation", "valid"), ("test", "tstid"))
    }
    assert splits_of(spec, data_dir) == expected
    assert class_names(spec, data_dir) == ["pink primrose", "hard-leaved", "canterbury"]
    assert_colours_match_labels("vgg_flower", data_dir, 10)


def test_cu_birds_labels_come_from_image_class_labels_by_image_id(tmp_path: Path, manual: Path):
    data_dir = tmp_path / "data"
    classes = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross", "004.Groove_billed_Ani"]
    # Image ids deliberately not in folder order, so reading labels by line position would go wrong.
    rows = [(7, 0, 1), (3, 0, 0), (5, 1, 1), (1, 1, 0), (2, 2, 1), (4, 2, 0), (6, 3, 1), (8, 3, 0)]
    root = "CUB_200_2011/"
    members = {root + "attributes/certainties.txt": b"1 not sure\n", "attributes.txt": b"1 has_bill_shape\n"}
    images_txt, labels_txt, split_txt = [], [], []
    for image_id, label, is_train in rows:
        path = f"{classes[label]}/{classes[label][4:]}_{image_id:04d}_{100 + image_id}.jpg"
        members[root + "images/" + path] = jpeg(tuple(PALETTE[label]), size=(30 + image_id, 22))
        images_txt.append(f"{image_id} {path}\n")
        labels_txt.append(f"{image_id} {label + 1}\n")
        split_txt.append(f"{image_id} {is_train}\n")
    members[root + "images.txt"] = "".join(sorted(images_txt, key=lambda line: int(line.split()[0]))).encode()
    members[root + "image_class_labels.txt"] = "".join(labels_txt).encode()
    members[root + "train_test_split.txt"] = "".join(split_txt).encode()
    members[root + "classes.txt"] = "".join(f"{k + 1} {c}\n" for k, c in enumerate(classes)).encode()
    write_tar(manual / "CUB_200_2011.tgz", members)
    spec = own_spec("cu_birds", manual, classes=4, images=8)
    prepare(spec, data_dir, manual, download=False)
    splits = splits_of(spec, data_dir)
    assert {split: len(files) for split, files in splits.items()} == {"train": 4, "test": 4}
    assert all("_0007_" in f or "_0005_" in f or "_0002_" in f or "_0006_" in f for f in splits["train"])
    assert class_names(spec, data_dir) == classes
    assert_colours_match_labels("cu_birds", data_dir, 8)


def make_aircraft(manual: Path) -> list[str]:
    variants = ["707-320", "A300B4", "F/A-18", "Cessna 172"]  # names with '/' and spaces, as in the real list
    data = "fgvc-aircraft-2013b/data/"
    members, boxes, lists = {}, [], {"train": [], "val": [], "test": []}
    for k in range(12):
        image_id, variant, split = f"{1025794 + 17 * k:07d}", k % 4, ("train", "val", "test")[k % 3]
        box = (16, 16, 48, 32) if k % 2 else (0, 0, 32, 16)  # x0, y0, x1, y1: whole JPEG blocks
        members[f"{data}images/{image_id}.jpg"] = jpeg(tuple(PALETTE[variant]), size=(64, 56), box=box)
        boxes.append(f"{image_id} {box[0] + 1} {box[1] + 1} {box[2]} {box[3]}\n")  # 1-based, inclusive
        lists[split].append(f"{image_id} {variants[variant]}\n")
    members[data + "variants.txt"] = "".join(f"{v}\n" for v in variants).encode()
    members[data + "images_box.txt"] = "".join(boxes).encode()
    for split, lines in lists.items():
        members[f"{data}images_variant_{split}.txt"] = "".join(lines).encode()
    members[data + "images_family_train.txt"] = b"1025794 Boeing 707\n"
    write_tar(manual / "fgvc-aircraft-2013b.tar.gz", members)
    return variants


def test_aircraft_variants_from_the_variant_lists_and_images_cropped_to_their_box(tmp_path: Path, manual: Path):
    data_dir = tmp_path / "data"
    variants = make_aircraft(manual)
    spec = own_spec("aircraft", manual, classes=4, images=12)
    assert spec.archives[0].sha256 is None  # no trustworthy digest is known for the real archive
    with pytest.warns(UserWarning, match="no trustworthy sha256"):
        prepare(spec, data_dir, manual, download=False)
    archive = prepared_info(spec, data_dir)["archives"][0]
    expected_digest = hashlib.sha256((manual / "fgvc-aircraft-2013b.tar.gz").read_bytes()).hexdigest()
    assert archive == {"name": "fgvc-aircraft-2013b.tar.gz", "sha256": expected_digest, "verified": False}
    assert {split: len(files) for split, files in splits_of(spec, data_dir).items()} == {
        "train": 4,
        "validation": 4,
        "test": 4,
    }
    assert class_names(spec, data_dir) == variants
    assert_colours_match_labels("aircraft", data_dir, 12)  # grey surround and black banner are cropped away


def test_the_cli_says_in_one_line_when_an_archive_could_not_be_verified(
    tmp_path: Path, manual: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    make_aircraft(manual)
    spec = own_spec("aircraft", manual, classes=4, images=12)  # the real spec with this small archive's counts
    monkeypatch.setattr(data_cli, "get_spec", lambda name: spec)
    args = ["data", "prepare", "aircraft", "--manual-dir", str(manual), "--data-dir", str(tmp_path / "d")]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "prepared aircraft: 12 images of 4 classes (test 4, train 4, validation 4)" in captured.out
    notes = [line for line in captured.err.splitlines() if line.startswith("nasgym: note:")]
    assert len(notes) == 1 and "fgvc-aircraft-2013b.tar.gz has no known sha256" in notes[0]
