"""Agent checkpoints: one file of tensors and plain data (dicts, lists, tuples, str, int, float, bool, None).

They are written with ``torch.save`` and read only with ``torch.load(weights_only=True)``, which builds nothing but
those types, so opening a checkpoint someone sent cannot run their code. ``write`` refuses anything else before
it reaches the disk, so every checkpoint an agent writes can be read back this way.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from nasgym.core.errors import CheckpointError
from nasgym.core.files import atomic_path

FORMAT = 2
"""Version of the checkpoint's layout; 1 was the layout that held pickled Python objects."""
PLAIN = (str, int, float, bool, type(None), torch.Tensor)
"""What a checkpoint may hold besides dicts with str keys, lists and tuples."""
ADVICE = "give an agent.pt that this version of nasgym saved (agent.save, or a search's --out folder)"


def check_plain(value: Any, where: str = "checkpoint") -> None:
    """Raise TypeError, naming where, if ``value`` holds anything ``torch.load(weights_only=True)`` would refuse."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where} has a key {key!r} of type {type(key).__name__}; checkpoints take str keys")
            check_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        if type(value) not in (list, tuple):  # a named tuple or a torch.Size unpickles through its class
            raise TypeError(f"{where} is a {type(value).__name__}; checkpoints hold plain lists and tuples")
        for index, item in enumerate(value):
            check_plain(item, f"{where}[{index}]")
    elif type(value) not in PLAIN and not isinstance(value, torch.Tensor):  # exact: np.float64 subclasses float
        raise TypeError(f"{where} is a {type(value).__name__}; checkpoints hold tensors and plain data only")


def write(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically (a temporary file, then a rename), so a kill or a full disk never leaves a truncated
    checkpoint; a full disk is a ``DiskFullError`` that says how much space is left."""
    check_plain(payload)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, "free space and continue with --resume") as temporary:
        torch.save(payload, temporary)


def read(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path``, checked to be one; anything else is a one-line CheckpointError."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist; {ADVICE}")
    if path.is_dir():
        raise CheckpointError(
            f"{path} is a folder, not an agent checkpoint; give the agent.pt inside a search's folder"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as error:
        if error.filename is None:  # torch's zip reader on a file cut short (EINVAL), not the OS refusing the file
            raise CheckpointError(
                f"{path} is not a nasgym agent checkpoint (it is cut short or damaged); {ADVICE}"
            ) from None
        raise  # unreadable (permissions, I/O): the OS's own message says what to do
    except Exception as error:  # parsing an untrusted file may fail in many ways; each means "not a checkpoint"
        raise CheckpointError(f"{path} is not a nasgym agent checkpoint ({_reason(error)}); {ADVICE}") from None
    problem = _layout_problem(payload)
    if problem:
        raise CheckpointError(f"{path} is not a nasgym agent checkpoint ({problem}); {ADVICE}")
    return payload


def unfit(path: str | Path, what: str, error: Exception) -> CheckpointError:
    """The error for a checkpoint whose hyperparameters or state this version's agent cannot take."""
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return CheckpointError(f"{path} is not a nasgym agent checkpoint ({what} this version: {reason}); {ADVICE}")


def _reason(error: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in a few words."""
    text = str(error)
    refused = re.search(r"GLOBAL ([\w.]+)", text)
    if isinstance(error, pickle.UnpicklingError) and refused:
        return f"it holds a pickled Python object, {refused.group(1)}, which loading could use to run code"
    if isinstance(error, EOFError) or "central directory" in text:
        return "the file is empty, cut short or damaged"
    return "not a PyTorch file of tensors and plain data"


def _layout_problem(payload: Any) -> str | None:
    """What is missing from a loaded checkpoint, or None."""
    if not isinstance(payload, dict) or not isinstance(payload.get("agent"), str):
        return "no agent name in it"
    if payload.get("format") != FORMAT:
        found = payload.get("format", 1)
        return f"checkpoint format {found!r}, from another version of nasgym; this one reads format {FORMAT}"
    expected = {"config": dict, "num_timesteps": int, "observation_shape": tuple, "state": dict, "metadata": dict}
    for key, kind in expected.items():
        if not isinstance(payload.get(key), kind):
            return f"its {key!r} is missing or malformed"
    return None
