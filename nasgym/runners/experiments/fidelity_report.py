"""What ``nasgym fidelity`` reports per cheap reward: Kendall's tau and Spearman's rho against the reference with
bootstrap 95% intervals, precision at the top 10%, seconds per evaluation and the cost ratio; a scatter plot per
reward (PNG), fidelity.csv and report.md."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure
from scipy import stats

REFERENCE = "reference"


def _finite(values: npt.ArrayLike) -> np.ndarray:
    """-inf (a NASWOT score of a singular kernel) ranks last; a rank correlation needs finite values."""
    array = np.asarray(values, dtype=float)
    low = np.nanmin(array[np.isfinite(array)]) - 1 if np.isfinite(array).any() else 0.0
    return np.where(np.isfinite(array), array, low)


def _correlations(reference: np.ndarray, cheap: np.ndarray) -> tuple[float, float]:
    if np.ptp(reference) == 0 or np.ptp(cheap) == 0:
        return math.nan, math.nan
    return float(stats.kendalltau(reference, cheap).statistic), float(stats.spearmanr(reference, cheap).statistic)


def precision_at_top(reference: np.ndarray, cheap: np.ndarray, share: float = 0.1) -> float:
    """Of the networks the cheap reward puts in its top ``share``, the fraction that are in the reference's top
    ``share`` (at least one network; ties broken by position, so the measure is repeatable)."""
    k = max(1, round(share * len(reference)))
    top = set(np.argsort(-reference, kind="stable")[:k])
    return len(top & set(np.argsort(-cheap, kind="stable")[:k])) / k


def compare(reference: list[float], cheap: list[float], bootstrap: int, seed: int) -> dict[str, Any]:
    """Rank agreement of ``cheap`` with ``reference`` over the same networks, with percentile bootstrap
    intervals (networks resampled with replacement)."""
    ref, low = _finite(reference), _finite(cheap)
    tau, rho = _correlations(ref, low)
    rng = np.random.default_rng(seed)
    samples = np.array([_correlations(ref[i], low[i]) for i in rng.integers(0, len(ref), (bootstrap, len(ref)))])
    interval = (
        np.nanpercentile(samples, [2.5, 97.5], axis=0) if np.isfinite(samples).any() else np.full((2, 2), math.nan)
    )
    better = ref >= np.median(ref)  # near-chance networks, which any proxy ranks easily, flatter the overall tau
    return {
        "kendall_tau": tau,
        "kendall_tau_better_half": _correlations(ref[better], low[better])[0] if better.sum() >= 4 else math.nan,
        "kendall_tau_ci": [float(interval[0, 0]), float(interval[1, 0])],
        "spearman_rho": rho,
        "spearman_rho_ci": [float(interval[0, 1]), float(interval[1, 1])],
        "precision_top10": precision_at_top(ref, low),
    }


def write_report(out: Path, results: dict[str, Any], bootstrap: int, seed: int) -> dict[str, dict[str, Any]]:
    """Per reward source its figures (the reference's own too); writes fidelity.csv, the plots and report.md."""
    out.mkdir(parents=True, exist_ok=True)
    networks = results["networks"]
    names = list(networks[0]["rewards"])
    column = {name: [n["rewards"][name] for n in networks] for name in names}
    seconds = {name: float(np.mean([n["seconds"][name] for n in networks])) for name in names}
    warmups = {name: results["warmup_seconds"].get(name, 0.0) for name in names}
    sources: dict[str, dict[str, Any]] = {}
    for name in names:
        figures = compare(column[REFERENCE], column[name], bootstrap, seed) if name != REFERENCE else {}
        sources[name] = {
            "description": results["descriptions"].get(name, name),
            **figures,
            "seconds_per_eval": seconds[name],
            "cost_ratio": seconds[REFERENCE] / seconds[name] if seconds[name] > 0 else math.inf,
            "warmup_seconds": warmups[name],
            "cost_ratio_with_warmup": seconds[REFERENCE] / (seconds[name] + warmups[name] / len(networks)),
        }
        if name != REFERENCE:
            _scatter(out / f"scatter_{name}.png", column[REFERENCE], column[name], name, sources[name])
    _write_csv(out / "fidelity.csv", networks, names)
    (out / "report.md").write_text(_markdown(results, sources))
    return sources


def _scatter(path: Path, reference: list[float], cheap: list[float], name: str, figures: dict[str, Any]) -> None:
    figure = Figure(figsize=(5, 4.5))
    axis = figure.subplots()
    axis.scatter(reference, _finite(cheap), s=14, alpha=0.7)
    axis.set_xlabel("reference reward (trained accuracy)")
    axis.set_ylabel(f"{name}")
    axis.set_title(
        f"{name}: tau {figures['kendall_tau']:.2f}, rho {figures['spearman_rho']:.2f}, "
        f"{figures['cost_ratio']:.0f}x cheaper",
        fontsize=9,
    )
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def _write_csv(path: Path, networks: list[dict[str, Any]], names: list[str]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["architecture", "depth", *names, *(f"seconds_{name}" for name in names)])
        for n in networks:
            writer.writerow([n["architecture"], n["depth"], *(n["rewards"][k] for k in names),
                             *(n["seconds"][k] for k in names)])  # fmt: skip


def _interval(values: list[float]) -> str:
    return f"[{values[0]:.2f}, {values[1]:.2f}]"


def table(sources: dict[str, dict[str, Any]]) -> str:
    """The markdown table of the cheap rewards, best Kendall tau first."""
    rows = [
        "| reward | Kendall tau [95% CI] | tau, better half | Spearman rho [95% CI] | precision top 10% | s / eval | "
        "cheaper | warm-up s | cheaper, warm-up over N |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    cheap = sorted((n for n in sources if n != REFERENCE), key=lambda n: -np.nan_to_num(sources[n]["kendall_tau"]))
    for name in cheap:
        s = sources[name]
        rows.append(
            f"| `{name}` | {s['kendall_tau']:.2f} {_interval(s['kendall_tau_ci'])} | "
            f"{s.get('kendall_tau_better_half', math.nan):.2f} | {s['spearman_rho']:.2f} "
            f"{_interval(s['spearman_rho_ci'])} | {s['precision_top10']:.2f} | {s['seconds_per_eval']:.3f} | "
            f"{s['cost_ratio']:.1f}x | {s['warmup_seconds']:.1f} | {s['cost_ratio_with_warmup']:.1f}x |"
        )
    rows.append(f"| `reference` | 1 | 1 | 1 | 1 | {sources[REFERENCE]['seconds_per_eval']:.3f} | 1x | 0 | 1x |")
    return "\n".join(rows)


def _markdown(results: dict[str, Any], sources: dict[str, dict[str, Any]]) -> str:
    plan = results["plan"]
    reference = [n["rewards"][REFERENCE] for n in results["networks"]]
    lines = [
        f"# Fidelity of cheap rewards on {plan['dataset']}",
        "",
        f"{len(results['networks'])} valid networks drawn with seed {plan['seed']}, an equal share of each depth; "
        f"reference: {sources[REFERENCE]['description']} (accuracy from {min(reference):.3f} to "
        f"{max(reference):.3f}, mean {np.mean(reference):.3f}). NAS-v0 keywords: `{plan['env_options']}`.",
        "",
        table(sources),
        "",
        "Kendall tau and Spearman rho: rank agreement with the reference over the same networks (1: the same order, "
        "0: unrelated), with percentile bootstrap 95% intervals over networks; 'better half': tau among the networks "
        "whose reference reward is at least the median, which near-chance networks cannot flatter "
        f"({plan['bootstrap']} resamples). Precision top 10%: the share of the cheap reward's top 10% that is in the "
        "reference's top 10%. Seconds per evaluation as measured here (trained rewards: the training's time, also "
        "when the reward cache answered; weight sharing: one step, k minibatches and the scoring); 'cheaper' is "
        "the reference's seconds over the reward's; the last column adds the weight-sharing warm-up shared out over "
        "this sample's N networks (a search shares it out over all its steps).",
        "",
        "| reward | what it is |",
        "|---|---|",
        *(f"| `{name}` | {s['description']} |" for name, s in sources.items()),
        "",
    ]
    lines += [f"![{name}](scatter_{name}.png)" for name in sources if name != REFERENCE]
    return "\n".join(lines) + "\n"
