"""Label-noise protocols for training labels: seeded, vectorised, saved with how they were made.

Typical use::

    from noisyfer.data import load_split
    from noisyfer.noise import noise_from_dataset, save_noisy_labels, load_noisy_labels

    train = load_split("data/raf", "train")
    noisy = noise_from_dataset(train, kind="symmetric", rate=0.3, seed=0)
    save_noisy_labels(noisy, "noise/raf_sym30_s0.csv")        # + raf_sym30_s0.json
    train = with_noisy_labels(train, load_noisy_labels("noise/raf_sym30_s0.csv"))

Protocols are described in :mod:`noisyfer.noise.protocols` (symmetric, uniform, asymmetric, crowd) and
:mod:`noisyfer.noise.instance` (instance-dependent noise); the file format in
:mod:`noisyfer.noise.files`.
"""

from __future__ import annotations

from .dataset import ORIGINAL_LABEL_COLUMN, load_probs, noise_from_dataset, with_noisy_labels
from .files import load_noisy_labels, read_label_file, save_noisy_labels, sidecar_path
from .instance import INSTANCE_WEIGHT_FLOOR, ambiguity_weights, flip_probabilities
from .pairs import DEFAULT_ASYMMETRIC_PAIRS, resolve_pairs
from .protocols import apply_noise
from .result import NOISE_KINDS, NoisyLabels, labels_sha256, transition_matrix

__all__ = [
    "DEFAULT_ASYMMETRIC_PAIRS",
    "INSTANCE_WEIGHT_FLOOR",
    "NOISE_KINDS",
    "ORIGINAL_LABEL_COLUMN",
    "NoisyLabels",
    "ambiguity_weights",
    "apply_noise",
    "flip_probabilities",
    "labels_sha256",
    "load_noisy_labels",
    "load_probs",
    "noise_from_dataset",
    "read_label_file",
    "resolve_pairs",
    "save_noisy_labels",
    "sidecar_path",
    "transition_matrix",
    "with_noisy_labels",
]
