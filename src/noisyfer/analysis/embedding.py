"""Two-dimensional t-SNE embeddings of features (paper 000, Fig. 5), deterministic for a seed."""

from __future__ import annotations

import numpy as np

from ..errors import UserError

__all__ = ["tsne"]


def tsne(features, *, seed: int = 0, perplexity: float = 30.0,
         max_samples: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """``(points (M, 2), indices (M,))``: scikit-learn's t-SNE (PCA initialisation) of at most
    ``max_samples`` rows of ``features``, drawn without replacement with ``seed`` (sorted indices).

    The perplexity is lowered to ``(M - 1) / 3`` for small sets, as t-SNE requires it below M.
    """
    from sklearn.manifold import TSNE

    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or features.shape[0] < 4:
        raise UserError(f"t-SNE needs (N, D) features with N >= 4, got shape {features.shape}")
    n = features.shape[0]
    indices = np.arange(n)
    if n > max_samples:
        indices = np.sort(np.random.default_rng(seed).choice(n, size=max_samples, replace=False))
    sample = features[indices]
    perplexity = min(float(perplexity), (len(sample) - 1) / 3.0)
    points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(sample)
    return points.astype(np.float64), indices
