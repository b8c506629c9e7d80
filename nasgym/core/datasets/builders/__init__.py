"""Our tensorflow-datasets builders, one per original archive layout; importing this registers them with tfds.

Importing it imports tensorflow-datasets (not TensorFlow), so only preparing and first reads do.
"""

from __future__ import annotations

from nasgym.core.datasets.builders.aircraft import Aircraft
from nasgym.core.datasets.builders.base import ArchiveBuilder
from nasgym.core.datasets.builders.cu_birds import CuBirds
from nasgym.core.datasets.builders.dtd import Dtd
from nasgym.core.datasets.builders.omniglot import Omniglot
from nasgym.core.datasets.builders.vgg_flower import VggFlower

BUILDERS: dict[str, type[ArchiveBuilder]] = {cls.name: cls for cls in (Omniglot, VggFlower, Dtd, Aircraft, CuBirds)}

__all__ = ["BUILDERS", "ArchiveBuilder"]
