"""Held-out metrics and the plots of a training run."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no screen on a workstation's CI or over ssh
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    classification_report,
    confusion_matrix,
)


def held_out_metrics(y_true: np.ndarray, probs: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, per-class precision/recall/F1 and the confusion matrix (rows = truth)."""
    y_pred = probs.argmax(axis=1)
    labels = list(range(len(classes)))
    report = classification_report(y_true, y_pred, labels=labels, target_names=classes,
                                   output_dict=True, zero_division=0)
    return {
        "accuracy": float((y_pred == y_true).mean()),
        "count": int(len(y_true)),
        "per_class": {c: {k: float(report[c][k]) for k in ("precision", "recall", "f1-score")}
                      | {"support": int(report[c]["support"])} for c in classes},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def classification_text(y_true: np.ndarray, probs: np.ndarray, classes: list[str]) -> str:
    return classification_report(y_true, probs.argmax(axis=1), labels=list(range(len(classes))),
                                 target_names=classes, digits=4, zero_division=0)


def plot_history(histories: dict[str, dict], path: Path) -> None:
    """Loss and accuracy of both phases on one time axis, phases marked."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    epoch = 0
    for phase, hist in histories.items():
        n = len(hist.get("loss", []))
        if not n:
            continue
        x = np.arange(epoch + 1, epoch + n + 1)
        for key, ax in (("loss", ax_loss), ("accuracy", ax_acc)):
            ax.plot(x, hist[key], label=f"{phase} train")
            if f"val_{key}" in hist:
                ax.plot(x, hist[f"val_{key}"], "--", label=f"{phase} validation")
        epoch += n
        ax_loss.axvline(epoch + 0.5, color="grey", lw=0.5)
    for ax, name in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(matrix: list[list[int]], classes: list[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(2 + 1.2 * len(classes), 1.6 + 1.2 * len(classes)))
    ConfusionMatrixDisplay(np.array(matrix), display_labels=classes).plot(ax=ax, colorbar=False)
    ax.set_title("held-out confusion matrix")
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
