"""Look-up benchmarks: NAS-v0's rewards as tables of real trainings with learning curves (``reward_source='table'``),
and how they are built (``build``) and planned (``plan``)."""

from nasgym.core.lookup.build import build_table
from nasgym.core.lookup.plan import TablePlan
from nasgym.core.lookup.table import Entry, Table, TableError, TableFile, describe, shipped, shipped_names

TABLE_IMAGE_SIZE = 16
"""The image side of the shipped tables: at 16 px a network of depth 3-4 trains 12 epochs in about 3.5 s on a 2-core
CPU (8.7 s at 28 px), which lets every network up to depth 4 fit the build budget."""

__all__ = [
    "TABLE_IMAGE_SIZE",
    "Entry",
    "Table",
    "TableError",
    "TableFile",
    "TablePlan",
    "build_table",
    "describe",
    "shipped",
    "shipped_names",
]
