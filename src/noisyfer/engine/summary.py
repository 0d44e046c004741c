"""Run summary from the per-epoch records: best, last and mean of the last 5 epochs.

Papers disagree on what they report (SCN, DMUE, LDLVA: best test accuracy over epochs; RUL, EAC and
the embedding-proximity paper: last epoch, mean +- std over runs; NCCTFER: best and mean of the
last 5), so the summary gives all of them, each labelled.
"""

from __future__ import annotations

import numpy as np


def _mean_last(values: list[float], k: int = 5) -> float:
    tail = [v for v in values[-k:] if v is not None]
    return float(np.mean(tail)) if tail else float("nan")


def summarize(history: list[dict], *, class_names: tuple[str, ...]) -> dict:
    """Summary fields (accuracies as fractions) from the list of epoch records."""
    if not history:
        return {"epochs_done": 0, "class_names": list(class_names)}
    acc = [r["test_accuracy"] for r in history]
    bal = [r["test_balanced_accuracy"] for r in history]
    best = int(np.nanargmax(np.array(acc, dtype=float)))
    last = history[-1]
    summary = {
        "epochs_done": len(history),
        "accuracy_best": acc[best],
        "best_epoch": history[best]["epoch"],
        "accuracy_last": acc[-1],
        "accuracy_last5": _mean_last(acc),
        "balanced_accuracy_best": float(np.nanmax(np.array(bal, dtype=float))),
        "balanced_accuracy_at_best_epoch": bal[best],
        "balanced_accuracy_last": bal[-1],
        "balanced_accuracy_last5": _mean_last(bal),
        "per_class_accuracy_last": last["test_per_class_accuracy"],
        "per_class_accuracy_best": history[best]["test_per_class_accuracy"],
        "confusion_last": last["test_confusion"],
        "confusion_best": history[best]["test_confusion"],
        "class_names": list(class_names),
    }
    for key in ("train_acc_given", "train_acc_true", "noisy_memorized", "noisy_corrected"):
        if key in last:
            summary[f"{key}_last"] = last[key]
    return summary
