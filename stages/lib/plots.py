"""Plot data (CSV, for ``dvc plots``) and PNG figures: ROC curves, score distributions, SDR vs r."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from .io import atomic_path


def roc_points(scores: np.ndarray, corrupted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC of flagging low scores as corrupted: (false-positive rate, true-positive rate)."""
    order = np.argsort(scores, kind="stable")
    hits = np.asarray(corrupted, bool)[order]
    tpr = np.concatenate([[0.0], np.cumsum(hits) / max(hits.sum(), 1)])
    fpr = np.concatenate([[0.0], np.cumsum(~hits) / max((~hits).sum(), 1)])
    return fpr, tpr


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    """Write a small CSV atomically (fixed float formatting)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row])
    with atomic_path(path) as tmp:
        tmp.write_text(out.getvalue())


def save_png(path: Path, draw) -> None:  # noqa: ANN001
    """Render ``draw(ax)`` into a PNG (Agg backend, fixed size, no timestamps in the file)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    draw(ax)
    save_figure(path, fig)


def save_figure(path: Path, fig) -> None:  # noqa: ANN001
    """Write a matplotlib figure as a PNG atomically, without timestamps, and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
