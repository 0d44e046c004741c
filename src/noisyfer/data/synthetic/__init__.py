"""FER simulator: rendered faces with known expressions, blends, valence/arousal and crowd votes.

The default dataset of noisyfer and its test bed with ground truth. Faces are drawn by a vectorised
numpy renderer from facial-action-like controls (``expressions.CONTROLS``), one prototype per class
after Ekman's descriptions, varied by identity (face shape, skin, hair, eyes, age) and nuisances
(pose, framing, light, background clutter, glasses, hands, masks, blur, noise).

Each split is a :class:`~noisyfer.data.format.FERData` whose ``labels`` are the true (clean) labels
and whose columns are:

``true_label``      the dominant class of the face (== ``labels``)
``label_dist``      (N, C) the blend of classes (one-hot, or two classes for ambiguous faces)
``valence``, ``arousal``  true VA on Russell's circumplex (see ``expressions``), scaled by intensity
``pseudo_valence``, ``pseudo_arousal``  an estimator-like VA (shrunk, class-biased, noisy)
``votes``, ``crowd_label``  simulated crowd annotation (see ``annotation``) and its majority vote
``ambiguity``       share of the second class in the blend (0: prototypical face)
``intensity``       expression intensity, 0 subtle .. 1 exaggerated (a neutral face has no
                    expression to scale; its value only scales the blend partner and the VA)

Typical use::

    from noisyfer.data.synthetic import SynthConfig, load_or_generate, write_preview
    splits, root = load_or_generate(SynthConfig(num_train=5000), cache_dir="~/.cache/noisyfer")
    write_preview(splits["train"], root / "preview.png")
"""

from __future__ import annotations

from .config import GENERATOR_VERSION, RAFDB_TRAIN_COUNTS, SynthConfig, class_prior, exact_class_counts
from .expressions import CONTROLS, PROTOTYPES, VA_COORDINATES, sample_expressions
from .generation import (
    CHUNK_SIZE,
    dataset_info,
    generate,
    generate_chunk,
    generate_to,
    load_or_generate,
    split_labels,
)
from .identity import sample_identities, sample_nuisances
from .preview import preview_size, write_preview
from .render import render_faces

__all__ = [
    "CHUNK_SIZE",
    "CONTROLS",
    "GENERATOR_VERSION",
    "PROTOTYPES",
    "RAFDB_TRAIN_COUNTS",
    "SynthConfig",
    "VA_COORDINATES",
    "class_prior",
    "dataset_info",
    "exact_class_counts",
    "generate",
    "generate_chunk",
    "generate_to",
    "load_or_generate",
    "preview_size",
    "render_faces",
    "sample_expressions",
    "sample_identities",
    "sample_nuisances",
    "split_labels",
    "write_preview",
]
