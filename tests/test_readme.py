"""README's code runs as written: every python block, and every `nasgym` command of its shell blocks.

The one change made to what README says is a budget override, so that the whole file runs in a test:

- python blocks: each text of ``PYTHON_BUDGET`` is replaced (28 px children become the tests' 16 px on 150 images);
- commands that train children get ``TINY_FLAGS`` appended (argparse keeps a repeated flag's last value; on Omniglot
  with ``OMNIGLOT_SAMPLES`` images), and the counts in ``COMMAND_BUDGET`` are capped (steps, networks, repeats, seeds,
  the weight-sharing warm-up); folders README names go under the test's own.

``test_every_snippet_names_its_own_budget`` checks first that README itself keeps each snippet small, so the override
only shrinks a budget README already keeps to a laptop's minute, never NasGym's 12 epochs at 84 px. Commands that
need a download, a Ray cluster, RLlib or a folder README does not create are skipped, each with its reason; those on
the small Omniglot sets need the real archives (tests/support.py) and are slow.
"""

from __future__ import annotations

import contextlib
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import OMNIGLOT_DIR, REPO, TINY_FLAGS, needs_omniglot

from nasgym.core.weight_sharing.config import WeightSharingConfig
from nasgym.runners.cli import main

README = REPO / "README.md"

PYTHON_BUDGET = {"image_size=28": "image_size=16, max_samples=150"}
"""Text replaced in every python block before it runs."""
COMMAND_BUDGET = {"--steps": 20, "--networks": 4, "--repeats": 2, "--seeds": 1, "--ws-warmup": 4}
"""Flags capped in every command that trains (and added where the command has none: see ``budgeted``)."""
OMNIGLOT_SAMPLES = 1000
"""``--max-samples`` for commands on the small Omniglot sets: enough for 136 classes on both sides of the split."""
TRAINING_COMMANDS = {"train", "search", "final", "fidelity", "bench", "transfer"}
DOWNLOAD_ONLY = {"dtd", "cu_birds", "vgg_flower", "aircraft", "omniglot"}
"""Datasets whose archives only a download (or a manual copy) gives: commands on them are skipped."""


@dataclass(frozen=True)
class Block:
    language: str
    section: str
    line: int
    text: str


def readme_blocks() -> list[Block]:
    """Fenced code blocks with the heading they sit under and the line they start on."""
    blocks, section, fence, body, start = [], "", None, [], 0
    for number, line in enumerate(README.read_text().splitlines(), 1):
        if fence is None and line.startswith("```"):
            fence, body, start = line[3:].strip() or "shell", [], number + 1
        elif fence is not None and line.startswith("```"):
            blocks.append(Block(fence, section, start, "\n".join(body) + "\n"))
            fence = None
        elif fence is not None:
            body.append(line)
        elif line.startswith("#"):
            section = line.lstrip("#").strip()
    return blocks


def readme_commands() -> list[tuple[Block, str]]:
    """Each `nasgym` command of the shell blocks, continuation lines joined, comments dropped."""
    commands = []
    for block in readme_blocks():
        if block.language not in ("bash", "shell"):
            continue
        for command in block.text.replace("\\\n", " ").splitlines():
            command = command.split("  #")[0].split(" # ")[0].strip()
            if command.startswith("nasgym "):
                commands.append((block, " ".join(command.split())))
    return commands


PYTHON = [block for block in readme_blocks() if block.language == "python"]
COMMANDS = readme_commands()


def _calls(text: str) -> list[str]:
    """The argument text of every ``gym.make(...)`` and ``gym.make_vec(...)`` call."""
    calls = []
    for match in re.finditer(r"gym\.make(?:_vec)?\(", text):
        depth, end = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
        calls.append(text[match.end() : end - 1])
    return calls


def _skip_reason(block: Block, argv: list[str]) -> str | None:
    if "..." in argv:
        return "a placeholder pointing at the section that gives the full command"
    if "--ray" in argv:
        return "needs a Ray cluster (tests/test_ray_cluster.py runs the backend on two local nodes)"
    named = [argv[i + 1] for i, flag in enumerate(argv[:-1]) if flag in ("--dataset", "--datasets")]
    if argv[1:3] == ["data", "prepare"]:
        named.append(argv[3])
        if "--manual-dir" not in argv:
            return f"downloads {argv[3]}'s archives"
    if any(dataset in DOWNLOAD_ONLY for name in named for dataset in name.split(",")):
        return f"needs {', '.join(named)}, which only a download gives"
    if "--start-from" in argv:
        return "continues a search folder README names but does not create"
    if "nasgym2019" in argv:
        return "NasGym's protocol: its datasets (downloads) and its budget (a GPU's work)"
    return None


def _needs_omniglot(block: Block, argv: list[str]) -> bool:
    """Commands on the small Omniglot sets (but for the look-up table, which needs no images), with bench and
    transfer, whose defaults search them."""
    return "table" not in argv and ("omniglot_small" in " ".join(argv) or argv[1] in ("bench", "transfer"))


def budgeted(argv: list[str], data_dir: Path) -> list[str]:
    """The command with the tests' budget: ``COMMAND_BUDGET``'s caps and ``TINY_FLAGS``; folders under the test's."""
    argv = [str(OMNIGLOT_DIR) if word in ("DIR", "../shared/data/omniglot") else word for word in argv]
    argv = [str(data_dir) if word.startswith("/tmp/") else word for word in argv]
    if argv[1:3] == ["table", "build"]:  # a whole plan is hours: two networks of it, at the tests' budget
        return [*argv, "--limit", "2", "--no-progress", *TINY_FLAGS]
    if argv[1] in ("bench", "transfer") and "table" in argv:  # minutes of many seeds: two seeds, a few steps
        steps = ["--steps", "30"] if argv[1] == "bench" else ["--steps-train", "20", "--steps-eval", "20"]
        return [*argv, "--seeds", "2", *steps, "--no-progress"]
    if argv[1] not in TRAINING_COMMANDS or "table" in argv:
        return argv  # the look-up table answers in microseconds, at the table's own settings
    for flag, cap in COMMAND_BUDGET.items():
        if flag in argv:
            at = argv.index(flag) + 1
            argv[at] = str(min(int(argv[at]), cap))
    if argv[1] == "fidelity":
        argv += ["--low-image-size", "12", "--bootstrap", "50"]
    if "weight_sharing" in argv and "--ws-warmup" not in argv:
        argv += ["--ws-warmup", str(COMMAND_BUDGET["--ws-warmup"])]
    if argv[1] in ("bench", "transfer"):
        argv += ["--seeds", "1", *(["--steps", "10"] if argv[1] == "bench" else ["--steps-train", "10"])]
        argv += [] if argv[1] == "bench" else ["--steps-eval", "10"]
    if argv[1] == "search" and "--steps" not in argv:
        argv += ["--steps", str(COMMAND_BUDGET["--steps"])]
    tiny = TINY_FLAGS + (["--no-progress"] if argv[1] in ("search", "final", "fidelity") else [])
    if "digits" not in argv:  # Omniglot's 136 classes need more images than TINY's on each side of the split
        at = tiny.index("--max-samples")
        # fidelity's cheap reward on a quarter of the images needs them all
        tiny[at : at + 2] = [] if argv[1] == "fidelity" else ["--max-samples", str(OMNIGLOT_SAMPLES)]
    return argv + tiny


def test_every_snippet_names_its_own_budget():
    """README's snippets are cheap as written: a lowered budget or the look-up table, never the 12-epoch default."""
    costly = []
    for block in PYTHON:
        for call in _calls(block.text):
            if "epochs=" not in call and 'reward_source="table"' not in call:
                costly.append(f"README.md:{block.line}: gym.make({call})")
    for block, command in COMMANDS:
        argv = shlex.split(command)
        trains = argv[1] in ("train", "search", "final", "fidelity")
        if trains and _skip_reason(block, argv) is None and "--epochs" not in argv and "table" not in argv:
            costly.append(f"README.md ({block.section}): {command}")
    assert not costly, "snippets that train at NasGym's 12 epochs on 84 px:\n" + "\n".join(costly)
    for old in PYTHON_BUDGET:  # the override still has something to lower
        assert any(old in block.text for block in PYTHON), old


def test_readme_quotes_the_weight_sharing_ranking_at_the_defaults():
    """The tau README and --ws-warmup's help quote was measured with exactly the defaults' ws_* settings."""
    import json

    recorded = json.loads((REPO / "benchmarks/results/fidelity_cpu/ws_variants/w10000/results.json").read_text())
    options = recorded["plan"]["env_options"]
    defaults = WeightSharingConfig()
    assert {name: options[name] for name in vars(defaults)} == vars(defaults)
    assert round(recorded["sources"]["ws_gap"]["kendall_tau"], 2) == 0.65
    assert "tau 0.65" in README.read_text() and "ws_variants/w10000/results.json" in README.read_text()


@pytest.mark.parametrize("block", PYTHON, ids=[f"line{block.line}" for block in PYTHON])
def test_python_block_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    if "ray.rllib" in block.text:  # core Ray is installed without RLlib's dependencies
        reason = "RLlib is not in the test extra (it pins an older gymnasium); tests/test_clients.py says more"
        pytest.importorskip("ray.rllib", reason=reason, exc_type=ImportError)
    code = block.text
    for old, new in PYTHON_BUDGET.items():
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    try:
        exec(compile(code, f"README.md:{block.line}", "exec"), namespace)
    finally:
        for value in namespace.values():
            if hasattr(value, "close") and type(value).__module__.startswith(("gymnasium", "nasgym")):
                with contextlib.suppress(Exception):
                    value.close()


def _command_params() -> list:
    params = []
    for block, command in COMMANDS:
        argv = shlex.split(command)
        marks = [pytest.mark.slow, needs_omniglot] if _needs_omniglot(block, argv) else []
        params.append(pytest.param(block, argv, marks=marks, id=f"line{block.line}:{command[7:60]}"))
    return params


@pytest.fixture(scope="module")
def omniglot_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both small Omniglot sets prepared once for the module's commands that search them."""
    data_dir = tmp_path_factory.mktemp("omniglot_data")
    for name in ("omniglot_small1", "omniglot_small2"):
        argv = ["data", "prepare", name, "--manual-dir", str(OMNIGLOT_DIR), "--data-dir", str(data_dir)]
        assert main([*argv, "--no-download"]) == 0
    return data_dir


@pytest.mark.parametrize(("block", "argv"), _command_params())
def test_command_runs(block: Block, argv: list[str], request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    reason = _skip_reason(block, argv)
    if reason:
        pytest.skip(reason)
    monkeypatch.chdir(tmp_path)
    data_dir = tmp_path / "data"
    if _needs_omniglot(block, argv) and argv[1:3] != ["data", "prepare"]:
        data_dir = request.getfixturevalue("omniglot_data")
    monkeypatch.setenv("NASGYM_DATA_DIR", str(data_dir))  # nothing outside the test's folders
    code = main(budgeted(argv, data_dir)[1:])
    output = capsys.readouterr()
    assert code == 0, output.err
    assert "Traceback" not in output.err
