"""``prepare(name)``: original archives -> a tensorflow-datasets dataset in ``array_record`` format, atomically.

The builder writes into a private staging folder ``DATA_DIR/.incomplete-NAME-PID-XXXX``; only when every
image has been decoded and the class and image counts match the spec is the finished version folder
renamed to its place (tfds's layout, ``DATA_DIR/<builder>/<config>/<version>``) with ``nasgym_prepared.json``
inside. A crash, a corrupt image or Ctrl-C therefore leaves nothing that a later run reads as whole, and
the next prepare removes staging folders whose process has gone.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from nasgym.core.datasets.archives import fetch_archives
from nasgym.core.datasets.specs import DatasetSpec, get_spec
from nasgym.core.errors import DatasetError
from nasgym.core.paths import default_data_dir

MARKER = "nasgym_prepared.json"
STAGING_PREFIX = ".incomplete-"


def data_root(data_dir: str | Path | None = None) -> Path:
    return Path(data_dir).expanduser() if data_dir is not None else default_data_dir()


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

    archives = fetch_archives(spec, data_dir, manual_dir, download=download)
    root = data_root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    remove_abandoned_staging(root)
    staging = root / f"{STAGING_PREFIX}{spec.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    try:
        builder = BUILDERS[spec.builder](
            spec=spec, archives={archive.spec.name: archive.path for archive in archives},
            config=spec.config, data_dir=staging, file_format="array_record",
        )  # fmt: skip
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
            "dataset": spec.name, "tfds_name": spec.tfds_name, "images": spec.images, "classes": spec.classes,
            "splits": splits, "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(time.perf_counter() - started, 1),
            "archives": [{"name": a.spec.name, "sha256": a.sha256, "verified": a.verified} for a in archives],
        }  # fmt: skip
        (built / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
        _publish(built, final, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _publish(built: Path, final: Path, staging: Path) -> None:
    """Rename the finished folder into place; a copy being replaced leaves with the staging folder."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        os.replace(final, staging / "replaced")
    os.rename(built, final)


def remove_abandoned_staging(root: Path) -> list[Path]:
    """Delete staging folders left by prepares that were killed (their process no longer runs)."""
    removed = []
    for path in root.glob(f"{STAGING_PREFIX}*"):
        try:
            pid = int(path.name[len(STAGING_PREFIX) :].rsplit("-", 2)[-2])
        except (ValueError, IndexError):
            continue
        if not _alive(pid):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
