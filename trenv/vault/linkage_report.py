"""The linkage quality report: JSON figures and PNG charts, aggregates only.

It travels with the linked dataset version to researchers, so it holds no record values, no
pseudonyms and no keys: counts, rates, model parameters and evaluation figures.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: the vault has no display
import matplotlib.pyplot as plt


def model_summary(model: dict[str, Any]) -> dict[str, Any]:
    """m, u and Bayes factor per comparison level from a Splink model dict."""
    comparisons = []
    for comp in model.get("comparisons", []):
        levels = []
        for level in comp.get("comparison_levels", []):
            if level.get("is_null_level"):
                continue
            m = level.get("m_probability")
            u = level.get("u_probability")
            bf = (m / u) if m is not None and u else None
            levels.append(
                {
                    "label": level.get("label_for_charts", ""),
                    "m_probability": m,
                    "u_probability": u,
                    "match_weight": math.log2(bf) if bf else None,
                }
            )
        comparisons.append({"name": comp.get("output_column_name"), "levels": levels})
    return {
        "probability_two_random_records_match": model.get("probability_two_random_records_match"),
        "comparisons": comparisons,
        "blocking_rules": [
            r.get("blocking_rule") for r in model.get("blocking_rules_to_generate_predictions", [])
        ],
    }


def chart_match_rates(rates: dict[str, float], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * max(len(rates), 1)))
    names = list(rates)
    ax.barh(names, [rates[n] * 100 for n in names], color="#3b6ea5")
    ax.set_xlim(0, 100)
    ax.set_xlabel("records linked to a person (%)")
    ax.set_title("Match rate per source")
    for i, name in enumerate(names):
        ax.text(min(rates[name] * 100 + 1, 92), i, f"{rates[name] * 100:.1f}%", va="center")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def chart_match_weights(
    histogram: list[tuple[float, int]], threshold_weight: float, title: str, path: Path
) -> Path:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if histogram:
        ax.bar([w for w, _ in histogram], [n for _, n in histogram], width=0.9, align="edge")
    ax.axvline(threshold_weight, color="#b03030", linestyle="--", label="acceptance threshold")
    ax.set_yscale("log")
    ax.set_xlabel("match weight (log2 Bayes factor incl. prior)")
    ax.set_ylabel("scored pairs")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def chart_parameters(summary: dict[str, Any], title: str, path: Path) -> Path:
    labels: list[str] = []
    weights: list[float] = []
    for comp in summary["comparisons"]:
        for level in comp["levels"]:
            if level["match_weight"] is None:
                continue
            labels.append(f"{comp['name']}: {level['label']}"[:60])
            weights.append(level["match_weight"])
    fig, ax = plt.subplots(figsize=(8, 0.6 + 0.3 * max(len(labels), 1)))
    colours = ["#3b8a4a" if w >= 0 else "#b03030" for w in weights]
    ax.barh(labels[::-1], weights[::-1], color=colours[::-1])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("partial match weight log2(m/u)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
