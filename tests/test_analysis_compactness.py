"""Cluster compactness (paper 000, Table 2 / Fig. 4) on hand-made features."""

from __future__ import annotations

import numpy as np
import pytest

from noisyfer.analysis.compactness import center_distances, class_centers, compactness
from noisyfer.errors import UserError


def test_centers_distances_and_per_class_statistics():
    # class 0 around (0, 0): distances 1, 1, 3 to the center (1, 0)... computed below by hand
    feats = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 3.0],  # class 0: center (1, 1)
                      [10.0, 0.0], [14.0, 0.0]])  # class 1: center (12, 0)
    labels = np.array([0, 0, 0, 1, 1])
    centers = class_centers(feats, labels, 3)
    assert centers[:2].tolist() == [[1.0, 1.0], [12.0, 0.0]] and np.isnan(centers[2]).all()
    result = compactness(feats, labels, num_classes=3)
    d0 = np.array([np.sqrt(2), np.sqrt(2), 2.0])  # (0,0),(2,0),(1,3) to (1,1)
    assert result.mean[0] == pytest.approx(d0.mean()) and result.std[0] == pytest.approx(d0.std())
    assert result.mean[1] == 2.0 and result.std[1] == 0.0
    assert np.isnan(result.mean[2]) and result.count.tolist() == [3, 2, 0]  # absent class: NaN, not 0
    separation = np.hypot(11.0, 1.0)  # the one pair of present centers
    assert result.center_separation == pytest.approx(separation)
    assert result.ratio == pytest.approx(np.mean([d0.mean(), 2.0]) / separation)


def test_distances_to_every_center_and_given_centers():
    feats = np.array([[3.0, 4.0]])
    centers = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 4.0]])
    assert center_distances(feats, centers).tolist() == [[5.0, 4.0, 0.0]]
    result = compactness(np.array([[3.0, 4.0], [0.0, 0.0]]), np.array([0, 0]), num_classes=3, centers=centers)
    assert result.mean[0] == 2.5  # distances 5 and 0 to the given center (0, 0)


def test_scaling_features_scales_distances_but_not_the_ratio():
    rng = np.random.default_rng(0)
    feats, labels = rng.normal(size=(60, 5)), np.arange(60) % 3
    feats[:, 0] += 4 * labels
    a, b = compactness(feats, labels, num_classes=3), compactness(7 * feats, labels, num_classes=3)
    assert np.allclose(b.mean, 7 * a.mean) and b.ratio == pytest.approx(a.ratio)


def test_bad_input():
    with pytest.raises(UserError, match=r"features must be \(N, D\)"):
        compactness(np.zeros(3), np.zeros(3, int), num_classes=2)
    with pytest.raises(UserError, match="labels must lie"):
        class_centers(np.zeros((2, 2)), np.array([0, 5]), 2)
