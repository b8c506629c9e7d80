"""Errors a user can act on. The CLI prints their message as one line, without a traceback."""


class NasGymError(Exception):
    """Base class: the message says what is wrong and how to fix it."""


class ArchitectureError(NasGymError, ValueError):
    """A malformed architecture string, NSC matrix or action."""


class DatasetError(NasGymError):
    """An unknown, missing, corrupt or unprepared dataset."""


class RewardCacheError(NasGymError):
    """The reward cache file cannot be used (corrupt, foreign, or from an incompatible version)."""
