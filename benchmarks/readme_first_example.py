"""How long README's first example takes a new user: a fresh interpreter, an empty reward cache, one network.

Runs the first ```python block of README.md as a script in a new process (imports, dataset, training and all),
with NASGYM_HOME in a new temporary folder so nothing is answered from a cache, and prints its wall time and peak
memory. As a reference taken in the same run, it times a process that only imports what the example imports
(torch, scikit-learn's datasets, gymnasium, nasgym): on a busy machine both grow, and their ratio says how much
of the wait is the example's own work. ``--defaults`` also runs the example with NasGym's protocol (the
example's ``epochs=1, image_size=28`` removed), which is what README warns about.

    python benchmarks/readme_first_example.py --out benchmarks/results/readme_first_example_cpu.json
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from nasgym.runners.experiments.records import cpu_name, write_json

REPO = Path(__file__).resolve().parents[1]
IMPORTS_ONLY = "import torch, sklearn.datasets, gymnasium, nasgym"
SMALL_BUDGET = ", epochs=1, image_size=28"


def first_python_block(readme: Path) -> str:
    match = re.search(r"```python\n(.*?)```", readme.read_text(encoding="utf-8"), re.DOTALL)
    if match is None:
        raise SystemExit(f"{readme} has no ```python block")
    return match.group(1)


PEAK = (
    "\nimport resource, sys\nprint('peak_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


def run_fresh(code: str) -> dict:
    """Wall seconds and peak memory of ``code`` in a new interpreter with an empty nasgym home."""
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "NASGYM_HOME": home}
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code + PEAK], env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"the example failed:\n{done.stderr}")
    peak_kib = int(re.findall(r"peak_kib (\d+)", done.stderr)[-1])
    return {"seconds": round(seconds, 2), "peak_rss_gib": round(peak_kib / 2**20, 2), "printed": done.stdout.strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each, the median is reported")
    parser.add_argument("--defaults", action="store_true", help="also run the example at NasGym's protocol")
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    args = parser.parse_args()

    example = first_python_block(REPO / "README.md")
    if SMALL_BUDGET not in example:
        raise SystemExit(f"README's first example no longer sets {SMALL_BUDGET!r}; update this benchmark")
    cases = {"example": example, "imports_only": IMPORTS_ONLY}
    if args.defaults:
        cases["example_at_defaults"] = example.replace(SMALL_BUDGET, "")
    results: dict = {"cpu": cpu_name(), "cpus": os.cpu_count(), "torch": torch.__version__}
    results["load_average_before"] = [round(load, 2) for load in os.getloadavg()]
    for name, code in cases.items():
        repeats = 1 if name == "example_at_defaults" else args.repeats
        runs = [run_fresh(code) for _ in range(repeats)]
        seconds = sorted(run["seconds"] for run in runs)
        results[name] = {**runs[0], "median_seconds": seconds[len(seconds) // 2], "seconds": seconds}
        print(f"{name}: {results[name]['median_seconds']} s (runs {seconds}), peak {runs[0]['peak_rss_gib']} GiB")
    ratio = results["example"]["median_seconds"] / results["imports_only"]["median_seconds"]
    results["example_over_imports"] = round(ratio, 2)
    results["load_average_after"] = [round(load, 2) for load in os.getloadavg()]
    print(
        f"example / imports only: {ratio:.2f}; load average before {results['load_average_before'][0]}, "
        f"after {results['load_average_after'][0]}"
    )
    if args.out:
        write_json(args.out, results)


if __name__ == "__main__":
    main()
