"""Child training: its settings (``config``), the data split (``split``), where it runs (``device``), the CUDA-graph
step (``cuda_graphs``), a CUDA stream per training thread (``streams``) and the loop (``trainer``)."""

from nasgym.core.training.config import TrainConfig
from nasgym.core.training.device import available_cpus, limit_threads, resolve_device, retained_heap
from nasgym.core.training.split import split_for, split_indices
from nasgym.core.training.trainer import ChildTrainer, EpochCallback, LearningCurve

__all__ = [
    "ChildTrainer",
    "EpochCallback",
    "LearningCurve",
    "TrainConfig",
    "available_cpus",
    "limit_threads",
    "resolve_device",
    "retained_heap",
    "split_for",
    "split_indices",
]
