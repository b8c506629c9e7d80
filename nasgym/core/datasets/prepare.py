"""``prepare(name)``: original archives -> a tensorflow-datasets dataset in ``array_record`` format, atomically.

The builder writes into a private staging folder ``DATA_DIR/.incomplete-NAME-PID-XXXX``; only when every
image has been decoded and the class and image counts match the spec is the finished version folder
renamed to its place (tfds's layout, ``DATA_DIR/<builder>/<config>/<version>``) with ``nasgym_prepared.json``
inside. A crash, a corrupt image or Ctrl-C therefore leaves nothing that a later run reads as whole, and
the next prepare removes staging folders whose process has gone (``storage``). A full disk or a data
directory nasgym may not write is a one-line DatasetError, and a copy prepared before stays as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nasgym.core.datasets.archives import fetch_archives
from nasgym.core.datasets.specs import DatasetSpec, get_spec
from nasgym.core.datasets.storage import (
    disk_errors,
    ensure_free,
    folder_path,
    new_staging_dir,
    remove_abandoned_staging,
    writable_dir,
)
from nasgym.core.errors import DatasetError
from nasgym.core.paths import default_data_dir
from nasgym.core.progress import bars_disabled

MARKER = "nasgym_prepared.json"


@contextlib.contextmanager
def _tfds_bars() -> Iterator[None]:
    """tensorflow-datasets' own bars (splits, examples, shuffling) follow nasgym's switch while it prepares:
    off with NASGYM_PROGRESS=0 (``--no-progress``); tfds's setting is put back after."""
    from tensorflow_datasets.core.utils import tqdm_utils

    shown = getattr(tqdm_utils, "_active", True)
    tqdm_utils.display_progress_bar(shown and not bars_disabled())
    try:
        yield
    finally:
        tqdm_utils.display_progress_bar(shown)


def data_root(data_dir: str | Path | None = None) -> Path:
    """The data directory (``data_dir`` or the default); a DatasetError when a file stands in its way."""
    return folder_path(Path(data_dir).expanduser() if data_dir is not None else default_data_dir())


def is_prepared(spec: DatasetSpec, data_dir: str | Path | None = None) -> bool:
    return (spec.prepared_dir(data_dir) / MARKER).is_file()


def prepared_info(spec: DatasetSpec, data_dir: str | Path | None = None) -> dict[str, Any] | None:
    """What ``nasgym_prepared.json`` recorded (counts, splits, archive digests), or None if not prepared."""
    try:
        return json.loads((spec.prepared_dir(data_dir) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def prepare(
    dataset: str | DatasetSpec,
    data_dir: str | Path | None = None,
    manual_dir: str | Path | None = None,
    *,
    download: bool = True,
    force: bool = False,
) -> Path:
    """Prepare ``dataset`` (a name or a spec) and return its folder; nothing to do if it is already prepared.

    Archives come from ``manual_dir`` (default ``DATA_DIR/downloads/manual``), earlier downloads, or, when
    ``download`` is true, the network; each is checked against the spec's size and sha256 first.
    """
    spec = get_spec(dataset) if isinstance(dataset, str) else dataset
    final = spec.prepared_dir(data_dir)
    if is_prepared(spec, data_dir) and not force:
        return final
    from nasgym.core.datasets.builders import BUILDERS  # imports tensorflow-datasets: only when preparing

    root = writable_dir(data_root(data_dir))
    archives = fetch_archives(spec, data_dir, manual_dir, download=download)
    remove_abandoned_staging(root)
    # The prepared copy holds the same encoded images as the archives: about as many bytes.
    ensure_free(root, sum(archive.path.stat().st_size for archive in archives))
    started = time.perf_counter()
    with disk_errors(root):
        staging = new_staging_dir(root, spec.name)
    try:
        builder = BUILDERS[spec.builder](
            spec=spec,
            archives={archive.spec.name: archive.path for archive in archives},
            config=spec.config,
            data_dir=staging,
            file_format="array_record",
        )
        with disk_errors(root), _tfds_bars():
            builder.download_and_prepare(download_dir=staging / "downloads")
        built = Path(builder.data_dir)
        splits = {name: split.num_examples for name, split in builder.info.splits.items()}
        classes = builder.info.features["label"].num_classes
        if (sum(splits.values()), classes) != (spec.images, spec.classes):
            raise DatasetError(
                f"{spec.name}: the archives gave {sum(splits.values()):,} images of {classes} classes, but "
                f"{spec.name} has {spec.images:,} of {spec.classes}; they are not the release nasgym expects "
                f"({', '.join(archive.spec.url for archive in archives)})"
            )
        marker = {
            "dataset": spec.name,
            "tfds_name": spec.tfds_name,
            "images": spec.images,
            "classes": spec.classes,
            "splits": splits,
            "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(time.perf_counter() - started, 1),
            "archives": [{"name": a.spec.name, "sha256": a.sha256, "verified": a.verified} for a in archives],
        }
        with disk_errors(root):
            (built / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
            _publish(built, final, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _publish(built: Path, final: Path, staging: Path) -> None:
    """Rename the finished folder into place; a copy being replaced leaves with the staging folder."""
    final.parent.mkdir(parents=True, exist_ok=True)
    replaced = staging / "replaced"
    if final.exists():
        os.replace(final, replaced)
    try:
        os.rename(built, final)
    except OSError:
        if replaced.exists():
            os.replace(replaced, final)  # the copy prepared before stays
        raise
