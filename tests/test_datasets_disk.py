"""A full disk, a read-only one, or a file where the data folder should be: one line, nothing half-written left.

Full and read-only disks are small tmpfs mounts made here (root can mount them); where mounting is not
possible those tests are skipped, saying why.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support import OMNIGLOT_DIR, SMALL1, Mount, fill, leftovers, needs_omniglot, run_command

import nasgym  # noqa: F401
from nasgym.core.datasets import get_dataset, load_dataset
from nasgym.core.datasets.image_cache import cache_dir, read_cache, write_cache
from nasgym.core.datasets.prepare import is_prepared, prepare
from nasgym.core.datasets.specs import get_spec
from nasgym.core.errors import DatasetError


def remount_read_only(disk: Path) -> None:
    result = run_command("mount", "-o", "remount,ro", str(disk))
    assert result.returncode == 0, result.stderr


def make_folder(root: Path, per_class: int = 6) -> Path:
    for k, name in enumerate(("cats", "dogs")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (20, 16), (200 * k, 40, 20 * i)).save(root / name / f"{i}.png")
    return root


# -- preparing ---------------------------------------------------------------------------------------------


@needs_omniglot
def test_preparing_on_a_disk_too_small_for_the_archives_is_refused_and_keeps_what_was_there(small_disk: Mount):
    disk = small_disk("2200k")
    prepare("omniglot_small1", disk, OMNIGLOT_DIR, download=False)
    with pytest.raises(DatasetError) as error:
        prepare("omniglot_small1", disk, OMNIGLOT_DIR, download=False, force=True)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"no space left on the device of {disk} (")
    assert "1,319,022 bytes needed" in message and "bytes free); free space there and run again" in message
    assert is_prepared(get_spec("omniglot_small1"), disk) and not leftovers(disk)
    assert len(load_dataset("omniglot_small1", 8, data_dir=disk)) == 2720  # the earlier copy still works


@needs_omniglot
def test_a_disk_that_fills_while_preparing_leaves_nothing_behind(small_disk: Mount):
    disk = small_disk("1500k")  # room for the archive's bytes, not for the prepared copy (about 1.6 MB)
    with pytest.raises(
        DatasetError, match=rf"^no space left on the device of {disk} \([\d,]+ bytes free, more needed\)"
    ):
        prepare("omniglot_small1", disk, OMNIGLOT_DIR, download=False)
    assert not is_prepared(get_spec("omniglot_small1"), disk) and not leftovers(disk)
    assert not get_spec("omniglot_small1").prepared_dir(disk).exists()


@needs_omniglot
def test_a_download_that_fills_the_disk_is_not_kept(small_disk: Mount, local_server):
    served, url = local_server
    shutil.copy(OMNIGLOT_DIR / SMALL1, served / SMALL1)
    disk = small_disk("1m")
    spec = get_spec("omniglot_small1").with_archives({SMALL1: {"url": url + SMALL1, "size": None}})
    with pytest.raises(DatasetError, match=rf"^no space left on the device of {disk / 'downloads'} \("):
        prepare(spec, disk, download=True)
    assert not list((disk / "downloads").iterdir())
    known_size = get_spec("omniglot_small1").with_archives({SMALL1: {"url": url + SMALL1}})
    with pytest.raises(DatasetError, match=r"1,319,022 bytes needed"):  # known size: refused before downloading
        prepare(known_size, disk, download=True)


@needs_omniglot
def test_a_read_only_data_dir_is_named_when_preparing(small_disk: Mount):
    disk = small_disk("1m", read_only=True)
    with pytest.raises(DatasetError) as error:
        prepare("omniglot_small1", disk / "data", OMNIGLOT_DIR, download=False)
    message = str(error.value)
    assert "\n" not in message and f"cannot write to {disk / 'data'} (read-only file system)" in message
    assert "NASGYM_HOME" in message


@needs_omniglot
def test_a_data_dir_that_is_a_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "home").write_text("not a folder")
    monkeypatch.setenv("NASGYM_HOME", str(tmp_path / "home"))
    expected = rf"^{tmp_path / 'home'} is a file, so nasgym cannot keep data in {tmp_path / 'home' / 'data'}; "
    with pytest.raises(DatasetError, match=expected):
        prepare("omniglot_small1", manual_dir=OMNIGLOT_DIR, download=False)
    folder = make_folder(tmp_path / "pets")
    with pytest.raises(DatasetError, match=rf"^{tmp_path / 'home'} is a file, .*NASGYM_HOME"):
        load_dataset(f"folder:{folder}", 8)


# -- the image cache ---------------------------------------------------------------------------------------


def test_an_image_cache_too_big_for_the_disk_is_refused_before_writing(small_disk: Mount, tmp_path: Path):
    disk = small_disk("64k")
    folder = make_folder(tmp_path / "pets")
    with pytest.raises(DatasetError, match=r"^no space left on the device of .*\(([\d,]+) bytes needed, ") as error:
        load_dataset(f"folder:{folder}", 64, data_dir=disk)
    needed = int(re.search(r"\(([\d,]+) bytes needed", str(error.value)).group(1).replace(",", ""))
    assert needed >= 12 * 64 * 64 * 3 and "65,536 bytes free" in str(error.value) and not leftovers(disk)


def test_a_disk_that_fills_while_the_cache_is_written_keeps_the_earlier_cache(small_disk: Mount):
    """The cache used to be written through a memory map, where a full disk is SIGBUS: the process died."""
    disk = small_disk("256k")
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8), np.arange(20) % 4
    small = write_cache(cache_dir(disk, 8), "toy", "v1", 8, 20, 4, [(images[:, :8, :8], labels)])

    def batches_while_another_program_fills_the_disk() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield images[:2], labels[:2]
        fill(disk)
        yield images[2:], labels[2:]

    with pytest.raises(DatasetError, match=rf"^no space left on the device of {disk} \([\d,]+ bytes free, more needed"):
        write_cache(cache_dir(disk, 32), "toy", "v1", 32, 20, 4, batches_while_another_program_fills_the_disk())
    assert not leftovers(disk) and not cache_dir(disk, 32).exists()
    again = read_cache(cache_dir(disk, 8), "toy", "v1")
    assert again is not None and again.fingerprint == small.fingerprint
    (disk / "other-program.bin").unlink()
    written = write_cache(
        cache_dir(disk, 32), "toy", "v1", 32, 20, 4, [(images[:9], labels[:9]), (images[9:], labels[9:])]
    )
    assert np.array_equal(written.images, images) and np.array_equal(written.labels, labels)


def test_a_read_only_data_dir_serves_its_caches_and_names_itself_for_a_new_one(small_disk: Mount, tmp_path: Path):
    disk = small_disk("1m")
    folder = make_folder(tmp_path / "pets")
    first = load_dataset(f"folder:{folder}", 8, data_dir=disk)
    remount_read_only(disk)
    assert load_dataset(f"folder:{folder}", 8, data_dir=disk).fingerprint == first.fingerprint
    root = get_dataset(f"folder:{folder}", data_dir=disk).cache_root()
    with pytest.raises(DatasetError, match=rf"^cannot write to {root} \(read-only file system\); make it writable"):
        load_dataset(f"folder:{folder}", 12, data_dir=disk)


# -- what a killed writer leaves -----------------------------------------------------------------------------

KILLED_WRITER = """
import sys, time
import numpy as np
from pathlib import Path
from nasgym.core.datasets.image_cache import cache_dir, write_cache

def batches():
    yield np.zeros((2, 8, 8, 3), np.uint8), np.zeros(2, np.int64)
    print("writing", flush=True)
    time.sleep(600)

write_cache(cache_dir(Path(sys.argv[1]), 8), "toy", "v1", 8, 4, 2, batches())
"""


def test_a_cache_build_killed_midway_leaves_staging_that_the_next_build_removes(tmp_path: Path):
    root = tmp_path / "cache"
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
    finally:
        child.kill()
        child.wait()
    (abandoned,) = root.glob(f".incomplete-8px-{child.pid}-*")
    alive = root / f".incomplete-16px-{os.getpid()}-abcd1234"  # a build in a process that still runs
    alive.mkdir()
    images = np.full((4, 8, 8, 3), 9, np.uint8)
    data = write_cache(cache_dir(root, 8), "toy", "v1", 8, 4, 2, [(images, np.array([0, 1, 0, 1]))])
    assert np.array_equal(data.images, images)
    assert not abandoned.exists() and alive.exists()
    assert sorted(path.name for path in root.iterdir()) == sorted(["8px", alive.name])
