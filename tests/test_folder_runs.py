"""A user's own ``folder:/path`` dataset in a benchmark: its runs and figures get one short, stable name each."""

from __future__ import annotations

from support import colour_folder

from nasgym.runners.cli import main
from nasgym.runners.experiments.records import path_name

FLAGS = ["--epochs", "1", "--image-size", "12", "--batch-size", "64", "--device", "cpu", "--no-progress"]


def test_a_folder_dataset_is_one_folder_named_by_its_last_part_and_a_hash_of_its_path(tmp_path):
    first, second = colour_folder(tmp_path / "a" / "my colours"), colour_folder(tmp_path / "b" / "my colours")
    name = path_name(f"folder:{first}")
    assert name.startswith("folder-my_colours-") and "/" not in name and ":" not in name
    assert name == path_name(f"folder:{first}") != path_name(f"folder:{second}")  # stable, and apart by path
    assert path_name("omniglot_small1") == "omniglot_small1"

    out = tmp_path / "bench"
    argv = ["bench", "agents", "--datasets", f"folder:{first}", "--agents", "random", "--steps", "4", "--seeds", "1",
            "--out", str(out), *FLAGS]  # fmt: skip
    assert main(argv) == 0
    assert [p.name for p in (out / "runs").iterdir()] == [name]
    assert (out / "runs" / name / "random" / "seed0" / "episodes.csv").is_file()
    assert (out / f"rewards_{name}.png").is_file()
