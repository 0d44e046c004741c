"""Run summary from the per-epoch records: best, last and mean of the last 5 epochs (fewer in a shorter run).

Papers disagree on what they report (SCN, DMUE, LDLVA: best test accuracy over epochs; RUL, EAC and
the embedding-proximity paper: last epoch, mean +- std over runs; NCCTFER: best and mean of the
last 5), so the summary gives all of them, each labelled.
"""

from __future__ import annotations

import numpy as np

#: Epochs averaged by the ``*_last5`` metrics (NCCTFER's convention); a shorter run averages all its epochs.
LAST_K = 5

#: The one label of each summary metric, used by the terminal table, the report and the sweep tables.
#: ``{epochs}``: the epochs averaged ("5 epochs"); ``{reference}``: what the training predictions are compared with.
METRIC_LABELS = {
    "accuracy_best": "test accuracy, best epoch (SCN, DMUE, LDLVA, SMEC convention)",
    "accuracy_last": "test accuracy, last epoch (RUL, EAC, embedding-proximity convention)",
    "accuracy_last5": "test accuracy, mean of the last {epochs} (NCCTFER convention)",
    "balanced_accuracy_best": "balanced accuracy, best over epochs (SMEC)",
    "balanced_accuracy_last": "balanced accuracy, last epoch",
    "balanced_accuracy_last5": "balanced accuracy, mean of the last {epochs}",
    "best_epoch": "best epoch",
    "train_acc_given_last": "training predictions = given (noisy) labels, last epoch",
    "train_acc_true_last": "training predictions = {reference} labels, last epoch",
    "noisy_memorized_last": "mislabeled training samples memorized, last epoch",
    "noisy_corrected_last": "mislabeled training samples predicted correctly, last epoch",
}


def metric_label(key: str, summary: dict | None = None) -> str:
    """The label of summary metric ``key`` for the run ``summary`` (its epoch count and reference labels)."""
    summary = summary or {}
    k = min(LAST_K, summary.get("epochs_done") or LAST_K)
    reference = summary.get("reference_labels", "true")
    return METRIC_LABELS.get(key, key).format(epochs=f"{k} epoch{'s' if k != 1 else ''}", reference=reference)


def _mean_last(values: list[float], k: int = LAST_K) -> float:
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
