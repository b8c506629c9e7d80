"""What every recorded benchmark writes beside its figures: the machine it ran on, and the JSON file itself."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from pathlib import Path
from typing import Any

from nasgym.core.files import atomic_path


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        names = re.findall(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text(encoding="utf-8"))
    except OSError:
        names = []
    return names[0].strip() if names else platform.processor() or platform.machine()


def write_json(path: str | os.PathLike, result: Any) -> Path:
    """Write ``result`` as indented JSON in one piece (a kill leaves the old file or the new one) and say where."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written to {path}")
    return path


def path_name(dataset: str) -> str:
    """``dataset`` as one folder or file name part: a registered name as it is, a ``folder:/path`` dataset as
    ``folder-NAME-HASH`` (its last path part and a hash of the whole path), so its runs do not nest by path."""
    if not dataset.startswith("folder:"):
        return dataset
    path = dataset[len("folder:") :]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).name).strip("._") or "folder"
    return f"folder-{stem}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"
