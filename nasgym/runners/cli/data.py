"""``nasgym data prepare NAME`` and ``nasgym data list``: make the Meta-Dataset sets ready, see what is where."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import envs_data
from nasgym.core.datasets.archives import default_manual_dir, downloads_dir
from nasgym.core.datasets.image_cache import cache_meta
from nasgym.core.datasets.meta_dataset import CACHE_FOLDER
from nasgym.core.datasets.prepare import data_root, is_prepared, prepare, prepared_info
from nasgym.core.datasets.specs import get_spec, spec_names


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data",
        help="prepare datasets and list them",
        description=(
            "Prepare the Meta-Dataset image sets (download or take the original archives, verify, "
            "convert to tensorflow-datasets array_record) and list what is prepared."
        ),
    )
    actions = parser.add_subparsers(title="actions", required=True, metavar="ACTION")
    prep = actions.add_parser(
        "prepare",
        help="prepare one dataset",
        description=(
            "Prepare NAME from its original archives: from --manual-dir (default DATA_DIR/downloads/manual), "
            "else downloaded; each is checked against its known size and sha256."
        ),
    )
    prep.add_argument("name", metavar="NAME", help=f"one of {', '.join(spec_names())}")
    prep.add_argument("--data-dir", default=None, help="where prepared datasets live (default ~/.cache/nasgym/data)")
    prep.add_argument("--manual-dir", default=None, help="folder that holds archives you downloaded yourself")
    prep.add_argument("--no-download", action="store_true", help="never download; use only local archives")
    prep.add_argument("--force", action="store_true", help="prepare again even if it is prepared")
    prep.set_defaults(handler=run_prepare)
    listing = actions.add_parser("list", help="show every dataset, whether it is prepared, where, and its size")
    listing.add_argument("--data-dir", default=None, help="where prepared datasets live (default ~/.cache/nasgym/data)")
    listing.set_defaults(handler=run_list)


def human_size(n_bytes: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n_bytes < 1000 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000
    raise AssertionError("unreachable")


def folder_size(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def run_prepare(args: argparse.Namespace) -> int:
    data_root(args.data_dir)  # a file given as --data-dir is refused before anything else
    spec = get_spec(args.name)
    if is_prepared(spec, args.data_dir) and not args.force:
        print(f"{spec.name} is already prepared in {spec.prepared_dir(args.data_dir)} (--force prepares it again)")
        return 0
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*no trustworthy sha256")  # said below, in one line
            path = prepare(spec, args.data_dir, args.manual_dir, download=not args.no_download, force=args.force)
    except KeyboardInterrupt:
        # prepare publishes only whole results: a half-built copy or download has been removed already.
        print(
            f"nasgym: interrupted; nothing was published (whole downloads are kept), so {spec.name} is as "
            "before: run the same command again",
            file=sys.stderr,
        )
        return 130
    info = prepared_info(spec, args.data_dir) or {}
    for archive in info.get("archives", []):
        if not archive["verified"]:
            print(
                f"nasgym: note: {archive['name']} has no known sha256 to verify against (its sha256 is "
                f"{archive['sha256']}); the class and image counts matched instead",
                file=sys.stderr,
            )
    splits = ", ".join(f"{name} {count:,}" for name, count in sorted(info.get("splits", {}).items()))
    print(f"prepared {spec.name}: {info.get('images', 0):,} images of {info.get('classes', 0)} classes ({splits})")
    print(f"in {path} ({human_size(folder_size(path))}, {time.perf_counter() - started:.1f} s)")
    return 0


def _status(name: str, data_dir: str | None) -> tuple[str, str, str]:
    spec = get_spec(name)
    path = spec.prepared_dir(data_dir)
    if is_prepared(spec, data_dir):
        metas = (cache_meta(d) for d in (path / CACHE_FOLDER).glob("*px"))
        caches = sorted(meta["image_size"] for meta in metas if meta)
        cached = f", cached at {', '.join(f'{size}px' for size in caches)}" if caches else ""
        return f"prepared{cached}", human_size(folder_size(path)), str(path)
    places = (default_manual_dir(data_dir), downloads_dir(data_dir))
    local = [a.name for a in spec.archives if any((place / a.name).is_file() for place in places)]
    have = f" ({len(local)} of {len(spec.archives)} archives here)" if local else ""
    return f"not prepared{have}", "-", f"`nasgym data prepare {name}`"


def run_list(args: argparse.Namespace) -> int:
    data_root(args.data_dir)  # a file given as --data-dir is refused before anything else
    rows = [("dataset", "classes", "images", "status", "size", "location")]
    digits = envs_data.load("datasets")["digits"]
    rows.append(("digits", str(digits["classes"]), f"{digits['images']:,}", "built in (scikit-learn)", "-", "-"))
    for name in spec_names():
        spec = get_spec(name)
        rows.append((name, str(spec.classes), f"{spec.images:,}", *_status(name, args.data_dir)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    manual = default_manual_dir(args.data_dir)
    print(f"data dir: {data_root(args.data_dir)}; archives you download yourself go in {manual}")
    return 0
