"""Where and how a child trains: the device, its memory, and how training uses the CPU (threads, and whether
freed memory goes back to the kernel).

Measured on a 2-core machine (benchmarks/README.md): glibc hands every block over 32 MiB straight back to
the kernel when it is freed, so each batch's activations, gradients and optimizer temporaries were
faulted in and zeroed again; with NasGym's unpadded convolutions a one-conv child has a 231M-parameter
head and that churn was most of the run time (sys time). ``retained_heap`` keeps freed blocks in the
process while children train and gives them back afterwards: 1.2-1.5x faster training for up to ~1.5x the
peak memory (fragmentation of the kept heap); set ``nasgym.core.training.device.RETAIN_HEAP = False`` to opt out.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import math
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import torch

from nasgym.core.errors import ConfigError

# glibc's mallopt parameters (malloc.h) and the defaults they are restored to.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_MAX = 65536
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # where glibc's dynamic threshold ends up after the first big free
_KEEP_EVERYTHING = 2**31 - 1

RETAIN_HEAP = True
"""Whether ``retained_heap`` changes anything (read on each outermost entry)."""

_lock = threading.Lock()
_depth = 0
_active = False


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 -- present in glibc only (not musl)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except (OSError, AttributeError):
        return None


_LIBC = _glibc()


@contextlib.contextmanager
def retained_heap() -> Iterator[bool]:
    """Keep freed memory inside the process (glibc only; elsewhere a no-op), then return it to the kernel.

    Nests and is thread-safe: settings change on the outermost entry and are restored on its exit. Yields
    whether the setting is in effect. Allocations that cannot be satisfied still fail at once.
    """
    global _depth, _active
    with _lock:
        if _depth == 0:
            _active = RETAIN_HEAP and _LIBC is not None
            if _active and _LIBC is not None:
                _LIBC.mallopt(_M_MMAP_MAX, 0)  # big blocks come from the heap ...
                _LIBC.mallopt(_M_TRIM_THRESHOLD, _KEEP_EVERYTHING)  # ... and stay there when freed
        _depth += 1
        active = _active
    try:
        yield active
    finally:
        with _lock:
            _depth -= 1
            if _active and _depth == 0:
                if _LIBC is not None:  # always, when active
                    _LIBC.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
                    _LIBC.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
                    _LIBC.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
                    _LIBC.malloc_trim(0)
                _active = False


def available_cpus() -> int:
    """CPUs this process may really use: its affinity mask and, in a container, its cgroup CPU quota."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    with contextlib.suppress(OSError, ValueError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, math.ceil(int(quota) / int(period)))
    return max(1, count)


def limit_threads() -> int:
    """Never run more intra-op threads than usable CPUs (PyTorch counts the host's cores); returns the count.

    Only lowers the setting, so a user's smaller ``torch.set_num_threads`` or OMP_NUM_THREADS stands.
    """
    usable = available_cpus()
    if torch.get_num_threads() > usable:
        torch.set_num_threads(usable)
    return torch.get_num_threads()


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' picks CUDA when available; an explicit device that does not exist raises a clear error."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device must be 'cuda', 'cuda:N', 'cpu' or 'auto', got {device!r}") from None
    if device.type not in ("cuda", "cpu"):
        raise ConfigError(f"device must be 'cuda', 'cuda:N', 'cpu' or 'auto', got {str(device)!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was requested but PyTorch sees no CUDA GPU; use device='cpu' or 'auto'")
    return device


def is_out_of_memory(error: BaseException | None) -> bool:
    """CUDA raises OutOfMemoryError, the CPU allocator a plain RuntimeError; a failed capture may wrap either."""
    while error is not None:
        if isinstance(error, torch.cuda.OutOfMemoryError):
            return True
        if isinstance(error, RuntimeError) and ("can't allocate memory" in str(error) or "out of memory" in str(error)):
            return True
        error = error.__cause__ or error.__context__
    return False


def memory_bytes(device: torch.device) -> int:
    """All of the device's memory (the host's physical memory for the CPU)."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
