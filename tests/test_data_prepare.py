"""What goes wrong while preparing is reported precisely and leaves nothing that a later run reads as whole."""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
from pathlib import Path

import gymnasium as gym
import pytest
from support import OMNIGLOT_DIR, SMALL1, TINY, make_dtd, needs_omniglot, own_spec

import nasgym  # noqa: F401
import nasgym.core.datasets.builders.dtd as dtd_builder
import nasgym.runners.cli.data as data_cli
from nasgym.core.datasets import load_dataset
from nasgym.core.datasets.archives import default_manual_dir
from nasgym.core.datasets.prepare import is_prepared, prepare, prepared_info
from nasgym.core.datasets.specs import get_spec
from nasgym.core.datasets.storage import remove_abandoned_staging
from nasgym.core.errors import DatasetError
from nasgym.runners.cli import main


def assert_nothing_left(data_dir: Path, name: str) -> None:
    spec = get_spec(name)
    assert not is_prepared(spec, data_dir) and not spec.prepared_dir(data_dir).exists()
    assert not list(data_dir.glob(".incomplete-*"))


@needs_omniglot
def test_checksum_mismatch_names_the_file_and_both_digests(tmp_path: Path):
    manual = tmp_path / "manual"
    manual.mkdir()
    damaged = bytearray((OMNIGLOT_DIR / SMALL1).read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # same size, one byte changed
    (manual / SMALL1).write_bytes(bytes(damaged))
    with pytest.raises(DatasetError) as error:
        prepare("omniglot_small1", tmp_path / "data", manual, download=False)
    message = str(error.value)
    assert str(manual / SMALL1) in message and get_spec("omniglot_small1").archives[0].sha256 in message
    assert hashlib.sha256((manual / SMALL1).read_bytes()).hexdigest() in message
    assert (manual / SMALL1).exists()  # a user's own file is reported, never deleted
    assert_nothing_left(tmp_path / "data", "omniglot_small1")


@needs_omniglot
def test_size_mismatch_names_both_sizes(tmp_path: Path):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / SMALL1).write_bytes((OMNIGLOT_DIR / SMALL1).read_bytes()[:1000])
    with pytest.raises(DatasetError, match=r"expected 1,319,022 bytes, got 1,000"):
        prepare("omniglot_small1", tmp_path / "data", manual, download=False)


def test_missing_archives_say_which_files_go_where(tmp_path: Path, capsys: pytest.CaptureFixture):
    assert main(["data", "prepare", "vgg_flower", "--data-dir", str(tmp_path), "--no-download"]) == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and message.startswith("nasgym: error:")
    for archive in ("102flowers.tgz", "imagelabels.mat", "setid.mat"):
        assert archive in message
    assert f"{default_manual_dir(tmp_path)}/" in message and "nasgym data prepare vgg_flower" in message


def test_the_env_never_downloads_and_says_what_to_do(tmp_path: Path):
    with pytest.raises(DatasetError, match=r"dtd-r1\.0\.1\.tar\.gz .*625,239,812 bytes.*nasgym data prepare dtd"):
        gym.make("NAS-v0", dataset="dtd", data_dir=tmp_path, **TINY)


@needs_omniglot
def test_the_env_prepares_by_itself_from_archives_in_the_manual_dir(tmp_path: Path):
    manual = default_manual_dir(tmp_path)
    manual.mkdir(parents=True)
    shutil.copy(OMNIGLOT_DIR / "images_background_small2.zip", manual)
    data = load_dataset("omniglot_small2", 12, data_dir=tmp_path)
    assert (len(data), data.n_classes) == (3120, 156)


def test_a_corrupt_image_is_reported_by_path_and_nothing_is_published(tmp_path: Path):
    manual, data_dir = tmp_path / "manual", tmp_path / "data"
    manual.mkdir()
    make_dtd(manual, corrupt="dotted/dotted_0002.jpg")  # in the middle of the archive, after good images
    spec = own_spec("dtd", manual, classes=3, images=12)
    with pytest.raises(DatasetError, match=r"corrupt image .*dtd-r1\.0\.1\.tar\.gz:dtd/images/dotted/dotted_0002\.jpg"):
        prepare(spec, data_dir, manual, download=False)
    assert_nothing_left(data_dir, "dtd")
    make_dtd(manual)  # a good copy of the archive: the next prepare starts clean and succeeds
    prepare(own_spec("dtd", manual, classes=3, images=12), data_dir, manual, download=False)
    assert len(load_dataset("dtd", 8, data_dir=data_dir)) == 12


def test_an_interrupted_prepare_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    manual, data_dir = tmp_path / "manual", tmp_path / "data"
    manual.mkdir()
    make_dtd(manual)
    spec = own_spec("dtd", manual, classes=3, images=12)
    calls = []

    def interrupted_after_five(data: bytes, where: str) -> bytes:  # Ctrl-C while the sixth image is written
        calls.append(where)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real(data, where)

    real = dtd_builder.checked_image
    monkeypatch.setattr(dtd_builder, "checked_image", interrupted_after_five)
    with pytest.raises(KeyboardInterrupt):
        prepare(spec, data_dir, manual, download=False)
    assert len(calls) == 6
    assert_nothing_left(data_dir, "dtd")
    monkeypatch.setattr(dtd_builder, "checked_image", real)
    prepare(spec, data_dir, manual, download=False)
    assert is_prepared(spec, data_dir)


def test_ctrl_c_in_data_prepare_says_nothing_was_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    manual, data_dir = tmp_path / "manual", tmp_path / "data"
    manual.mkdir()
    make_dtd(manual)
    spec = own_spec("dtd", manual, classes=3, images=12)
    real = dtd_builder.checked_image
    calls = []

    def interrupted_after_five(data: bytes, where: str) -> bytes:
        calls.append(where)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real(data, where)

    monkeypatch.setattr(dtd_builder, "checked_image", interrupted_after_five)
    monkeypatch.setattr(data_cli, "get_spec", lambda name: spec)
    args = ["data", "prepare", "dtd", "--manual-dir", str(manual), "--data-dir", str(data_dir)]
    assert main(args) == 130
    (said,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("nasgym:")]
    assert said.startswith("nasgym: interrupted; nothing was published") and "run the same command again" in said
    assert_nothing_left(data_dir, "dtd")
    monkeypatch.setattr(dtd_builder, "checked_image", real)
    assert main(args) == 0 and is_prepared(spec, data_dir)


def test_wrong_counts_are_refused_before_publishing(tmp_path: Path):
    manual, data_dir = tmp_path / "manual", tmp_path / "data"
    manual.mkdir()
    make_dtd(manual)
    with pytest.raises(DatasetError, match=r"gave 12 images of 3 classes, but dtd has 5,640 of 47"):
        prepare(own_spec("dtd", manual, classes=47, images=5640), data_dir, manual, download=False)
    assert_nothing_left(data_dir, "dtd")


def test_staging_left_by_a_killed_prepare_is_removed(tmp_path: Path):
    dead = tmp_path / ".incomplete-dtd-999999999-abcd1234"  # no process has this id
    (dead / "nasgym_dtd").mkdir(parents=True)
    dead_download = tmp_path / ".incomplete-dtd-r1.0.1.tar.gz-999999999-0123abcd"
    dead_download.write_bytes(b"half an archive")
    alive = tmp_path / f".incomplete-dtd-{os.getpid()}-abcd1234"
    alive.mkdir()
    assert remove_abandoned_staging(tmp_path) == [dead, dead_download]
    assert not dead.exists() and not dead_download.exists() and alive.exists()


@needs_omniglot
def test_data_list_shows_what_is_prepared_where(tmp_path: Path, capsys: pytest.CaptureFixture):
    prepare("omniglot_small1", tmp_path, OMNIGLOT_DIR, download=False)
    load_dataset("omniglot_small1", 12, data_dir=tmp_path)
    assert main(["data", "list", "--data-dir", str(tmp_path)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "prepared, cached at 12px" in lines["omniglot_small1"]
    assert str(get_spec("omniglot_small1").prepared_dir(tmp_path)) in lines["omniglot_small1"]
    assert "MB" in lines["omniglot_small1"] and "not prepared" in lines["dtd"] and "1623" in lines["omniglot"]


@needs_omniglot
def test_downloads_are_verified_and_kept_only_when_whole(tmp_path: Path, local_server):
    served, url = local_server
    spec = get_spec("omniglot_small1").with_archives({SMALL1: {"url": url + SMALL1}})
    damaged = bytearray((OMNIGLOT_DIR / SMALL1).read_bytes())
    damaged[100] ^= 0xFF
    (served / SMALL1).write_bytes(bytes(damaged))
    with pytest.raises(DatasetError, match=f"checksum mismatch .*expected sha256 {spec.archives[0].sha256}, got"):
        prepare(spec, tmp_path / "data", download=True)
    assert not list((tmp_path / "data" / "downloads").iterdir())  # no partial or damaged download is kept
    shutil.copy(OMNIGLOT_DIR / SMALL1, served / SMALL1)
    prepare(spec, tmp_path / "data", download=True)
    assert (tmp_path / "data" / "downloads" / SMALL1).stat().st_size == spec.archives[0].size
    assert prepared_info(spec, tmp_path / "data")["archives"][0]["verified"]


@needs_omniglot
def test_a_download_cut_midway_is_not_kept(tmp_path: Path, local_server, monkeypatch: pytest.MonkeyPatch):
    served, url = local_server
    shutil.copy(OMNIGLOT_DIR / SMALL1, served / SMALL1)

    def send_half(handler, source, out) -> None:  # the connection drops after half of the announced bytes
        data = source.read()
        out.write(data[: len(data) // 2])

    monkeypatch.setattr(http.server.SimpleHTTPRequestHandler, "copyfile", send_half)
    for size in (get_spec("omniglot_small1").archives[0].size, None):  # with the size known, and without
        spec = get_spec("omniglot_small1").with_archives({SMALL1: {"url": url + SMALL1, "size": size}})
        with pytest.raises(DatasetError, match=rf"downloading failed \({SMALL1}: .*put {SMALL1} \("):
            prepare(spec, tmp_path / "data", download=True)
        assert not list((tmp_path / "data" / "downloads").iterdir())
