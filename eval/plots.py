"""Figures for the evaluation reports (PNG files written with matplotlib's Agg canvas).

Figures are built with the object-oriented API (``matplotlib.figure.Figure``), so no pyplot state and
no global backend switch: this works headless and inside notebooks alike.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from jepa_core.extras import missing_extra

try:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
except ImportError as _err:
    raise missing_extra("matplotlib", extra="plots", purpose="evaluation report plots") from _err

OTHER_LABEL = "(other)"


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (parent folders created); every report figure goes through here."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_recall_curves(
    curves: Mapping[str, Sequence[int] | np.ndarray], path: str | Path, *, max_k: int = 100
) -> Path:
    """Recall@K against K (log axis) for each named array of 0-based ranks (negative ranks skipped)."""
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for name, ranks in curves.items():
        ranks = np.asarray(ranks)
        ranks = ranks[ranks >= 0]
        ks = np.arange(1, max(2, max_k) + 1)
        recall = [(ranks < k).mean() if ranks.size else 0.0 for k in ks]
        ax.plot(ks, np.asarray(recall) * 100, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("K")
    ax.set_ylabel("Recall@K (%)")
    ax.set_ylim(0, 101)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def plot_similarity_histogram(
    positives: Sequence[float] | np.ndarray,
    negatives: Sequence[float] | np.ndarray,
    path: str | Path,
    *,
    title: str,
    xlabel: str = "cosine similarity",
) -> Path:
    """Overlaid, density-normalised histograms of positive-pair and negative-pair scores."""
    positives = np.asarray(positives, dtype=float)
    negatives = np.asarray(negatives, dtype=float)
    positives, negatives = positives[np.isfinite(positives)], negatives[np.isfinite(negatives)]
    both = np.concatenate([positives, negatives])
    bins = np.linspace(both.min(), both.max() + 1e-6, 41) if both.size else 10
    return _overlaid_histograms({"positives": positives, "negatives": negatives}, bins, path, title, xlabel)


def plot_values_histogram(
    series: Mapping[str, Sequence[float] | np.ndarray], path: str | Path, *, title: str, xlabel: str
) -> Path:
    """Overlaid histograms of one or more named value series (e.g. per-example CIDEr)."""
    arrays = {name: np.asarray(values, dtype=float) for name, values in series.items()}
    both = np.concatenate([values for values in arrays.values() if values.size] or [np.zeros(1)])
    bins = np.linspace(both.min(), both.max() + 1e-6, 31)
    return _overlaid_histograms(arrays, bins, path, title, xlabel)


def _overlaid_histograms(
    arrays: Mapping[str, np.ndarray], bins: np.ndarray | int, path: str | Path, title: str, xlabel: str
) -> Path:
    """Density-normalised histograms of the non-empty named arrays, drawn over each other."""
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for name, values in arrays.items():
        if values.size:
            ax.hist(values, bins=bins, alpha=0.55, density=True, label=f"{name} (n={values.size})")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend()
    return save_figure(fig, path)


def plot_accuracy_by_group(
    accuracy: Mapping[str, float],
    counts: Mapping[str, int],
    path: str | Path,
    *,
    title: str,
    max_groups: int = 40,
) -> Path:
    """Horizontal bars of accuracy (%) per group (e.g. question type), the most frequent groups first."""
    groups = sorted(accuracy, key=lambda name: (-counts.get(name, 0), name))[:max_groups]
    fig = Figure(figsize=(7, max(2.5, 0.28 * len(groups) + 1.2)))
    ax = fig.add_subplot()
    values = [accuracy[name] * 100 for name in groups]
    ax.barh(range(len(groups)), values, color="tab:blue")
    ax.set_yticks(range(len(groups)), [f"{name} (n={counts.get(name, 0)})" for name in groups], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy (%)")
    ax.set_title(title)
    return save_figure(fig, path)


def confusion_counts(
    truth: Sequence[str], predicted: Sequence[str], *, max_labels: int = 15
) -> tuple[list[str], np.ndarray]:
    """Row-true / column-predicted counts over the ``max_labels`` most frequent true labels.

    Everything else is pooled into an ``"(other)"`` row/column when present.
    """
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true labels but {len(predicted)} predictions")
    frequent = [label for label, _ in sorted(Counter(truth).items(), key=lambda kv: (-kv[1], kv[0]))]
    labels = frequent[:max_labels]
    keep = set(labels)
    if any(t not in keep for t in truth) or any(p not in keep for p in predicted):
        labels.append(OTHER_LABEL)
    position = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(truth, predicted):
        matrix[
            position.get(t, position.get(OTHER_LABEL, 0)), position.get(p, position.get(OTHER_LABEL, 0))
        ] += 1
    return labels, matrix


def plot_confusion_matrix(
    truth: Sequence[str], predicted: Sequence[str], path: str | Path, *, title: str, max_labels: int = 15
) -> Path:
    """Confusion matrix (rows: truth, columns: prediction) of the most frequent labels, row-normalised."""
    labels, matrix = confusion_counts(truth, predicted, max_labels=max_labels)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.45 * len(labels) + 2)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.add_subplot()
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    ax.set_title(title)
    if len(labels) <= 20:
        for row in range(len(labels)):
            for col in range(len(labels)):
                if matrix[row, col]:
                    color = "white" if rates[row, col] > 0.5 else "black"
                    ax.text(
                        col, row, str(matrix[row, col]), ha="center", va="center", fontsize=7, color=color
                    )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of row")
    return save_figure(fig, path)


def plot_step_curves(
    curves: Mapping[str, Sequence[tuple[Sequence[float], Sequence[float]]]],
    path: str | Path,
    *,
    ylabel: str,
    title: str,
) -> Path:
    """One colour per group (e.g. per arm): each run's ``(steps, values)`` as a thin line, and the mean over
    the runs at the steps they all logged as a thick one."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for index, (label, runs) in enumerate(curves.items()):
        color = f"C{index}"
        for steps, values in runs:
            ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
        shared = sorted(set.intersection(*(set(steps) for steps, _ in runs))) if runs else []
        if shared:
            lookup = [dict(zip(steps, values)) for steps, values in runs]
            mean = [float(np.mean([run[step] for run in lookup])) for step in shared]
            ax.plot(shared, mean, color=color, linewidth=2, label=f"{label} (mean of {len(runs)})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if curves:
        ax.legend()
    return save_figure(fig, path)
