"""Decoded, resized images kept in a memory-mapped ``.npy`` file, so only the first environment decodes.

A cache folder ``<size>px/`` holds ``images.npy`` (uint8 ``(N, size, size, 3)``, opened memory-mapped),
``labels.npy`` and ``meta.json`` (class count, the arrays' fingerprint so big datasets are not re-hashed
at every start, and a ``source`` token that says which data it was made from). It is written under a
staging name and renamed into place whole, so an interrupted or failed build leaves no cache behind, and
one left by a killed process is removed by the next build beside it.

The images are written batch by batch into an open file after the ``.npy`` header, not through a memory
map: on a full disk a write to a mapped page kills the process with SIGBUS, while ``write`` fails with
ENOSPC, which becomes a DatasetError. The free space is checked before the first byte too.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from nasgym.core.datasets.base import DEFAULT_RESIZE, Fingerprint, ImageData, bilinear_align_corners
from nasgym.core.datasets.storage import (
    disk_errors,
    ensure_free,
    new_staging_dir,
    remove_abandoned_staging,
    staging_path,
    writable_dir,
)
from nasgym.core.errors import DatasetError
from nasgym.core.progress import bars_disabled

CACHE_FORMAT = 1
_HEADROOM = 1 << 16  # bytes for the .npy headers and meta.json
Job = TypeVar("Job")


def cache_dir(root: Path, image_size: int, resize: str = DEFAULT_RESIZE) -> Path:
    """``84px`` for the default resize, ``84px-<resize>`` for another: their pixels differ."""
    return root / (f"{image_size}px" if resize == DEFAULT_RESIZE else f"{image_size}px-{resize}")


@dataclass(frozen=True)
class CachedImageData(ImageData):
    """Images memory-mapped from a cache folder. They pickle and deep-copy as that folder, not as their pixels
    (a Meta-Dataset set at 84 px is gigabytes): the copy maps the same file again, after checking that it still
    holds the same images."""

    directory: Path
    source: str

    def __reduce__(self) -> tuple:
        filename = self.images.filename if isinstance(self.images, np.memmap) else None
        mapped = filename is not None and Path(filename).resolve() == self.directory / "images.npy"
        if not mapped:  # not the cache's own mapping: the pixels themselves
            return ImageData, (self.name, self.images, self.labels, self.n_classes, self.fingerprint)
        return reopen_cache, (self.directory, self.name, self.source, self.fingerprint)


def reopen_cache(directory: Path, name: str, source: str, fingerprint: str) -> CachedImageData:
    """The cache a pickled ``CachedImageData`` came from, if it still holds the same images."""
    data = read_cache(directory, name, source)
    if data is None or data.fingerprint != fingerprint:
        raise DatasetError(
            f"the image cache {directory} of {name} was removed or rebuilt since this environment was pickled; "
            "make the environment anew"
        )
    return data


def read_cache(directory: Path, name: str, source: str) -> CachedImageData | None:
    """The cached arrays, memory-mapped, or None when there is no whole cache made from ``source``."""
    try:
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if meta.get("format") != CACHE_FORMAT or meta.get("source") != source:
        return None
    # Copy-on-write mapping: pages are read on demand and the arrays are writable for torch, never written back.
    images = np.load(directory / "images.npy", mmap_mode="c")
    labels = np.load(directory / "labels.npy")
    if images.shape != (meta["images"], meta["image_size"], meta["image_size"], 3) or len(labels) != len(images):
        return None
    return CachedImageData(name, images, labels, meta["n_classes"], meta["fingerprint"], directory.resolve(), source)


def write_cache(
    directory: Path,
    name: str,
    source: str,
    image_size: int,
    n_images: int,
    n_classes: int,
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
) -> ImageData:
    """Fill a new cache from ``batches`` of (images, labels) in order, then publish it in one rename."""
    root = directory.parent
    try:
        writable_dir(root)
        remove_abandoned_staging(root)
        ensure_free(root, n_images * (3 * image_size**2 + np.dtype(np.int64).itemsize) + _HEADROOM)
        with disk_errors(root):
            staging = new_staging_dir(root, directory.name)
            try:
                labels, fingerprint = _write_images(staging / "images.npy", name, image_size, n_images, batches)
                np.save(staging / "labels.npy", labels)
                meta = {
                    "format": CACHE_FORMAT,
                    "name": name,
                    "source": source,
                    "image_size": image_size,
                    "images": n_images,
                    "n_classes": n_classes,
                    "fingerprint": fingerprint,
                }
                (staging / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
                _publish(staging, directory)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    finally:
        if close := getattr(batches, "close", None):
            close()  # a failed build stops the decoding threads' queued work now, not when garbage-collected
    data = read_cache(directory, name, source)
    if data is None:  # another process published a different cache at the same moment
        raise RuntimeError(f"the image cache {directory} changed while it was written; run again")
    return data


def _write_images(
    path: Path, name: str, image_size: int, n_images: int, batches: Iterable[tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, str]:
    """Write the ``.npy`` header, then each batch's bytes; return the labels and the arrays' fingerprint."""
    shape = (n_images, image_size, image_size, 3)
    labels = np.empty(n_images, dtype=np.int64)
    fingerprint = Fingerprint(shape, np.uint8, labels.shape, labels.dtype)
    filled = 0
    with open(path, "wb") as file:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(file, header)
        for batch_images, batch_labels in batches:
            if batch_images.shape[1:] != shape[1:] or filled + len(batch_images) > n_images:
                raise RuntimeError(f"cache of {name}: a batch of shape {batch_images.shape} does not fit {shape}")
            batch_images = np.ascontiguousarray(batch_images, dtype=np.uint8)
            file.write(batch_images.data)
            fingerprint.update(batch_images)
            labels[filled : filled + len(batch_labels)] = batch_labels
            filled += len(batch_images)
    if filled != n_images:
        raise RuntimeError(f"cache of {name}: expected {n_images} images, got {filled}")
    fingerprint.update(labels)
    return labels, fingerprint.hexdigest()


def _publish(staging: Path, directory: Path) -> None:
    """Rename ``staging`` to ``directory``; a stale cache there is moved aside first and then deleted."""
    if directory.exists():
        stale = staging_path(directory.parent, f"{directory.name}-stale")
        os.replace(directory, stale)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        os.rename(staging, directory)
    except OSError:
        if not directory.exists():  # another process won the race: its cache is as good as ours
            raise


def resize_each(images: Sequence[np.ndarray], image_size: int, resize: str = DEFAULT_RESIZE) -> np.ndarray:
    """Resize uint8 RGB images of any sizes to one ``(N, size, size, 3)`` array.

    PIL's bilinear filter widens with the scale factor, so it is antialiased like ``resize_images`` (within one
    grey level of it); unlike a torch call per image it costs ~1 ms for a 500x375 photo and releases the GIL,
    so the decoding threads run in parallel. ``resize="bilinear_align_corners"`` is TF1's unfiltered resize.
    """
    out = np.empty((len(images), image_size, image_size, 3), dtype=np.uint8)
    for index, image in enumerate(images):
        if resize != DEFAULT_RESIZE:
            out[index] = bilinear_align_corners(image, image_size)
            continue
        resized = Image.fromarray(image).resize((image_size, image_size), Image.Resampling.BILINEAR)
        out[index] = np.asarray(resized)
    return out


def parallel_batches(
    jobs: Sequence[Job], work: Callable[[Job], tuple[np.ndarray, np.ndarray]], total: int, desc: str
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``work(job)`` for every job on a few threads (decoders release the GIL), in order, with a progress bar."""
    pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))
    try:
        with tqdm(total=total, unit="img", desc=desc, leave=False, disable=bars_disabled()) as bar:
            for images, labels in pool.map(work, jobs):
                bar.update(len(labels))
                yield images, labels
    finally:
        pool.shutdown(cancel_futures=True)  # a failure stops the queued work instead of finishing it


def cache_meta(directory: Path) -> dict[str, Any] | None:
    try:
        return json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
