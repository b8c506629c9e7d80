"""Errors a user can act on. The CLI prints their message as one line, without a traceback."""

import importlib.util
import os
import sys
import warnings


class NasGymError(Exception):
    """Base class: the message says what is wrong and how to fix it."""


class ConfigError(NasGymError, ValueError):
    """A setting, keyword or hyperparameter with an unknown name, a wrong type or a value out of range."""


class ArchitectureError(NasGymError, ValueError):
    """A malformed architecture string, NSC matrix or action."""


class DatasetError(NasGymError):
    """An unknown, missing, corrupt or unprepared dataset."""


class RewardCacheError(NasGymError):
    """The reward cache file cannot be used (corrupt, foreign, or from an incompatible version)."""


class CheckpointError(NasGymError):
    """A file that is not a nasgym checkpoint, is damaged, or belongs to another agent or search."""


class NasGymWarning(UserWarning):
    """Something a user should know that does not stop the work (a read-only reward cache, an unverified archive).
    The command line prints it as one line; from the API it points at the caller's line, not nasgym's."""


_SKIPPED = ("nasgym", "agents", "gymnasium")
"""Packages whose frames a warning passes over to reach the line that set the work off."""


def warn(message: str) -> None:
    """``warnings.warn(message, NasGymWarning)`` attributed to the first caller outside nasgym, its agents and
    Gymnasium (what Python 3.12's ``skip_file_prefixes`` does), so the source line shown is the user's code."""
    folders = []
    for name in _SKIPPED:
        spec = importlib.util.find_spec(name)
        folders += [os.path.join(folder, "") for folder in (spec.submodule_search_locations or [])] if spec else []
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(tuple(folders)):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, NasGymWarning, stacklevel=level)
