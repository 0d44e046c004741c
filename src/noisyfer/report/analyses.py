"""Every analysis of one run, computed lazily and cached, for the reports and ``noisyfer suspects``.

Each accessor returns ``None`` when the run cannot provide the quantity (no ground truth, a method
that records no scores or labels, a dataset without true distributions); :meth:`RunAnalyses.why_not`
says why, so reports print "n/a" with a reason instead of a number.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import torch

from ..analysis.compactness import Compactness, center_distances, class_centers, compactness
from ..analysis.detection import NoiseDetection, noise_detection
from ..analysis.fidelity import label_distribution_fidelity
from ..analysis.memorization import memorization_curves
from ..analysis.relabel import label_history, relabel_report
from ..analysis.rundata import RunData
from ..analysis.suspects import rank_suspects, suspicion

__all__ = ["RunAnalyses"]


class RunAnalyses:
    """Analyses of the run at ``path`` (model-based ones load ``checkpoint`` weights on ``device``)."""

    def __init__(self, path, *, checkpoint: str = "best", device: str | None = "cpu"):
        self.run = RunData(path)
        self.checkpoint = checkpoint
        self.device = device
        self.reasons: dict[str, str] = {}

    def why_not(self, key: str) -> str:
        return self.reasons.get(key, "not available")

    # -- from files ------------------------------------------------------------------------
    @cached_property
    def curves(self) -> dict[str, np.ndarray]:
        return memorization_curves(self.run.metrics)

    @cached_property
    def record(self) -> dict[str, np.ndarray]:
        return self.run.sample_record()

    @cached_property
    def truth(self) -> tuple[np.ndarray | None, str | None]:
        true, reference = self.run.truth()
        if true is None:
            self.reasons["truth"] = "the true training labels are unknown (no simulator, no injected noise)"
        return true, reference

    @cached_property
    def noisy(self) -> np.ndarray | None:
        true, _ = self.truth
        return None if true is None else self.run.given_labels != true

    @cached_property
    def detection(self) -> NoiseDetection | None:
        true, reference = self.truth
        if true is None:
            self.reasons["detection"] = self.why_not("truth")
            return None
        score, labels = self.record.get("clean_score"), self.record.get("labels")
        if score is None and labels is None:
            self.reasons["detection"] = (f"method '{self.run.method}' records no per-sample clean_score and no "
                                         "relabels")
            return None
        return noise_detection(given=self.run.given_labels, true=true, clean_score=score, labels=labels,
                               reference=reference)

    @cached_property
    def relabel(self):
        if "labels" not in self.record:
            self.reasons["relabel"] = f"method '{self.run.method}' does not relabel (no 'labels' record)"
            return None
        true, _ = self.truth
        return relabel_report(self.run.path, true_labels=true)

    @cached_property
    def history(self) -> np.ndarray | None:
        return label_history(self.run.path)[0] if "labels" in self.record else None

    @cached_property
    def fidelity(self) -> dict | None:
        learned = self.record.get("label_dist")
        if learned is None:
            self.reasons["fidelity"] = f"method '{self.run.method}' records no label distributions ('label_dist')"
            return None
        truth = self.run.train.columns.get("label_dist")
        if truth is None:
            self.reasons["fidelity"] = "the dataset has no true label distributions (column 'label_dist')"
            return None
        return label_distribution_fidelity(learned, truth)

    # -- from the weights ------------------------------------------------------------------
    @cached_property
    def model(self):
        from ..analysis.features import load_model

        return load_model(self.run.path, checkpoint=self.checkpoint, device=self.device)

    @cached_property
    def test_outputs(self) -> tuple[np.ndarray, np.ndarray]:
        """(features, logits) of the test split."""
        from ..analysis.features import extract

        return extract(self.model, self.run.test.images)

    @cached_property
    def centers(self) -> np.ndarray:
        return class_centers(self.test_outputs[0], self.run.test.labels, self.run.num_classes)

    @cached_property
    def compactness(self) -> Compactness:
        return compactness(self.test_outputs[0], self.run.test.labels, num_classes=self.run.num_classes,
                           centers=self.centers)

    def train_outputs(self, indices) -> tuple[np.ndarray, np.ndarray]:
        """(features, logits) of training samples ``indices``."""
        from ..analysis.features import extract

        return extract(self.model, self.run.train.images[np.asarray(indices)])

    def distances_to_centers(self, indices) -> np.ndarray:
        """(S, C) distances of training samples ``indices`` to the test-feature class centers."""
        return center_distances(self.train_outputs(indices)[0], self.centers)

    @cached_property
    def train_probs(self) -> np.ndarray:
        """(N, C) softmax of the model's prediction on every un-augmented training image."""
        from ..analysis.features import extract

        logits = extract(self.model, self.run.train.images)[1]
        return torch.from_numpy(logits).softmax(1).numpy()

    def suspects(self, top: int) -> dict:
        """The ``top`` training samples most likely mislabeled (see :mod:`noisyfer.analysis.suspects`)."""
        given = self.run.given_labels
        score, suggested = suspicion(self.train_probs, given=given)
        order = rank_suspects(score, top=min(top, len(given)))
        out = {"indices": order, "score": score[order], "given": given[order], "suggested": suggested[order]}
        if self.noisy is not None:
            out["mislabeled"] = self.noisy[order]
            out["true"] = self.truth[0][order]
        return out

    # -- choices of samples ----------------------------------------------------------------
    def chosen_training_samples(self, k: int = 6) -> tuple[np.ndarray, str]:
        """Samples to show distances / Grad-CAMs for, and how they were chosen."""
        from ..analysis.relabel_targets import most_inconsistent

        if self.history is not None:
            chosen = most_inconsistent(self.history, k)
            if len(chosen):
                return chosen, "training samples relabeled back and forth the most"
            moved = np.flatnonzero(self.history[-1] != self.history[0])[:k]
            if len(moved):
                return moved, "relabeled training samples (first by index)"
        if self.noisy is not None and self.noisy.any():
            return np.flatnonzero(self.noisy)[:k], "mislabeled training samples (first by index)"
        return np.arange(min(k, len(self.run.given_labels))), "first training samples"

    def relabeled_samples(self, k: int = 6) -> np.ndarray:
        """Up to ``k`` samples whose final label differs from the given one, most label changes first."""
        from ..analysis.relabel import flip_counts

        if self.history is None:
            return np.array([], dtype=np.int64)
        moved = np.flatnonzero(self.history[-1] != self.history[0])
        flips = flip_counts(self.history)[moved]
        return moved[np.lexsort((moved, -flips))][:k]

    def chosen_test_faces(self) -> np.ndarray:
        """The first test image of each class present."""
        labels = self.run.test.labels
        return np.array([np.flatnonzero(labels == c)[0] for c in range(self.run.num_classes) if (labels == c).any()])
