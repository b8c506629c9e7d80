"""The three layers import only downwards: the core never imports agents or runners, agents never the runners.

The contract lives in pyproject.toml ([tool.importlinter]); import-linter reads every import statement, the lazy
ones inside functions included.
"""

from __future__ import annotations

from pathlib import Path

from importlinter.cli import lint_imports

REPO = Path(__file__).resolve().parents[1]


def test_the_layer_contract_holds(monkeypatch):
    monkeypatch.chdir(REPO)
    assert lint_imports(no_cache=True, no_logo=True) == 0, "an import points up a layer; see the report above"


def test_every_module_of_nasgym_sits_in_a_layer():
    loose = sorted(p.name for p in (REPO / "nasgym").iterdir() if p.suffix == ".py" or (p / "__init__.py").exists())
    assert loose == ["__init__.py", "__main__.py", "core", "runners"], (
        "a module directly under nasgym/ is in no layer: move it into nasgym/core or nasgym/runners"
    )
