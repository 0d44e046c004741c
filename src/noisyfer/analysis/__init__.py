"""Analyses of finished (or running) runs, read from their run directories.

=====================  =================================================================
:mod:`.relabel`        relabel inconsistency of relabeling methods (paper 000, Fig. 3)
:mod:`.relabel_targets` where relabeled samples went; the most inconsistent samples
:mod:`.compactness`    cluster compactness, distances to class centers (paper 000, Table 2, Fig. 4)
:mod:`.detection`      noise detection: precision / recall / F1, AUROC of clean scores
:mod:`.memorization`   training accuracy against given and true labels per epoch
:mod:`.fidelity`       KL of learned label distributions to the simulator's true ones
:mod:`.perclass`       per-class accuracy, balanced accuracy, normalised confusion
:mod:`.suspects`       ranking of suspected mislabels
:mod:`.embedding`      t-SNE of features
:mod:`.features`       a run's model: features, logits, CAMs, Grad-CAMs
:mod:`.rundata`        reading run directories
=====================  =================================================================
"""

from .compactness import Compactness, center_distances, class_centers, compactness
from .detection import NoiseDetection, auroc, bottom_k, detection_scores, noise_detection
from .embedding import tsne
from .features import LoadedModel, class_activation_maps, extract, grad_cams, load_model
from .fidelity import kl_divergence, label_distribution_fidelity, run_label_distribution_closeness, valid_distributions
from .memorization import CURVE_KEYS, agreement, memorization_curves
from .perclass import balanced_accuracy, classification_from_predictions, normalized_confusion, per_class_accuracy
from .relabel import (
    RelabelReport,
    changes_per_epoch,
    dataset_true_labels,
    flip_counts,
    label_history,
    relabel_accuracy,
    relabel_report,
    return_counts,
    returns_per_epoch,
)
from .relabel_targets import most_inconsistent, relabel_target_counts
from .rundata import RunData, find_runs, is_run_dir
from .suspects import precision_at, rank_suspects, suspicion

__all__ = [
    "CURVE_KEYS", "Compactness", "LoadedModel", "NoiseDetection", "RelabelReport", "RunData", "agreement", "auroc",
    "balanced_accuracy", "bottom_k", "center_distances", "changes_per_epoch", "class_activation_maps",
    "class_centers", "classification_from_predictions", "compactness", "dataset_true_labels", "detection_scores",
    "extract", "find_runs", "flip_counts", "grad_cams", "is_run_dir", "kl_divergence", "label_distribution_fidelity",
    "label_history", "load_model", "memorization_curves", "most_inconsistent", "noise_detection",
    "normalized_confusion", "per_class_accuracy", "precision_at", "rank_suspects", "relabel_accuracy",
    "relabel_report", "relabel_target_counts", "return_counts", "returns_per_epoch", "run_label_distribution_closeness",
    "suspicion", "tsne",
    "valid_distributions",
]
