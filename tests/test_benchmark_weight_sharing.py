"""benchmarks/weight_sharing.py runs end to end and records both rewards for the same networks (no timing checks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support import REPO


def test_the_weight_sharing_benchmark_records_both_rewards(tmp_path: Path) -> None:
    out = tmp_path / "ws.json"
    command = [sys.executable, str(REPO / "benchmarks" / "weight_sharing.py"), "--dataset", "digits",
               "--image-size", "16", "--epochs", "1", "--max-samples", "300", "--ws-warmup", "3", "--repeats", "2",
               "--out", str(out)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    record = json.loads(out.read_text())
    names = [row["architecture"] for row in record["architectures"]]
    assert len(names) == 8 and "c3" in names
    assert all(0 <= row["ws_accuracy"] <= 1 and 0 <= row["trained_accuracy"] <= 1 for row in record["architectures"])
    assert record["ratio_of_means"] > 0 and record["options"]["ws_steps"] == 1
    assert "ratio" in result.stdout
