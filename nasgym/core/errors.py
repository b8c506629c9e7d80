"""Errors a user can act on. The CLI prints their message as one line, without a traceback."""


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
