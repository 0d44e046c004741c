"""Statistical invariants of the label side of the simulator (no rendering): blends, VA, crowd."""

from __future__ import annotations

import numpy as np

from noisyfer.data.classes import BASIC7
from noisyfer.data.synthetic.annotation import annotator_pool, crowd_votes, pseudo_valence_arousal
from noisyfer.data.synthetic.expressions import (
    PSEUDO_VA_BIAS,
    VA_COORDINATES,
    confusion_affinity,
    sample_expressions,
    true_valence_arousal,
)

C = 7


def _sample(n=20000, ambiguity=0.3, random_pair=0.15, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, n)
    ex = sample_expressions(
        rng, labels, num_classes=C, ambiguity=ambiguity, random_pair=random_pair, intensity_range=(0, 1)
    )
    return labels, ex


def test_blend_share_matches_ambiguity_within_binomial_noise():
    for a in (0.0, 0.3, 0.8):
        labels, ex = _sample(ambiguity=a)
        n = labels.size
        share = (ex["ambiguity"] > 0).mean()
        assert abs(share - a) <= 4 * np.sqrt(a * (1 - a) / n) + 1e-12
        dist = ex["label_dist"]
        np.testing.assert_allclose(dist.sum(1), 1.0, atol=1e-6)
        assert (dist.argmax(1) == labels).all()
        blended = ex["ambiguity"] > 0
        # the second class carries exactly the recorded share, and it is a minority
        np.testing.assert_allclose(dist[blended, ex["second_label"][blended]], ex["ambiguity"][blended])
        assert (ex["ambiguity"] < 0.5).all()
        assert ((dist > 0).sum(1) == 1 + blended).all()


def test_blends_follow_typical_confusions():
    r = 0.15
    labels, ex = _sample(ambiguity=1.0, random_pair=r)
    typical = confusion_affinity(C) > 0
    is_typical = typical[labels, ex["second_label"]]
    # P(typical partner | class c) = (1 - r) + r * (#typical partners of c) / (C - 1)
    expected = ((1 - r) + r * typical.sum(1) / (C - 1))[labels].mean()
    n = labels.size
    assert abs(is_typical.mean() - expected) <= 4 * np.sqrt(expected * (1 - expected) / n)
    fear, surprise = BASIC7.index("fear"), BASIC7.index("surprise")
    assert (ex["second_label"][labels == fear] == surprise).mean() > 0.8


def test_true_va_is_the_scaled_circumplex_blend():
    labels, ex = _sample(n=5000)
    dist, intensity = ex["label_dist"].astype(np.float64), ex["intensity"].astype(np.float64)
    va = true_valence_arousal(dist, intensity)
    assert np.abs(va).max() <= 1.0
    plain = ex["ambiguity"] == 0
    np.testing.assert_allclose(
        va[plain], VA_COORDINATES[labels[plain]] * (0.35 + 0.65 * intensity[plain, None]), atol=1e-6
    )
    mean_v = np.array([va[labels == c, 0].mean() for c in range(C)])
    mean_a = np.array([va[labels == c, 1].mean() for c in range(C)])
    idx = {n: i for i, n in enumerate(BASIC7)}
    assert mean_v[idx["happiness"]] > 0.3
    for neg in ("sadness", "anger", "fear", "disgust"):
        assert mean_v[idx[neg]] < -0.2, neg
    for high in ("surprise", "fear", "anger"):
        assert mean_a[idx[high]] > 0.3, high
    assert mean_a[idx["sadness"]] < -0.1
    assert abs(mean_v[idx["neutral"]]) < 0.1


def test_pseudo_va_is_correlated_but_shrunk_and_noisy():
    labels, ex = _sample(n=5000)
    dist = ex["label_dist"].astype(np.float64)
    va = true_valence_arousal(dist, ex["intensity"].astype(np.float64))
    rng = np.random.default_rng(1)
    pseudo = pseudo_valence_arousal(rng, va, dist, prior_mean=np.zeros(2), noise=0.12, shrinkage=0.25)
    assert np.abs(pseudo).max() <= 1.0
    for k in range(2):
        r = np.corrcoef(va[:, k], pseudo[:, k])[0, 1]
        assert 0.6 < r < 0.99
        assert np.abs(va[:, k] - pseudo[:, k]).mean() > 0.05
        assert pseudo[:, k].std() < va[:, k].std()  # shrinkage outweighs the added noise
    # without noise: no shrinkage leaves only the class bias, full shrinkage only mean + bias
    bias = dist @ PSEUDO_VA_BIAS[:C]
    exact = pseudo_valence_arousal(rng, va, dist, prior_mean=np.zeros(2), noise=0.0, shrinkage=0.0)
    np.testing.assert_allclose(exact, np.clip(va + bias, -1, 1))
    mean = np.array([0.1, 0.2])
    flat = pseudo_valence_arousal(rng, va, dist, prior_mean=mean, noise=0.0, shrinkage=1.0)
    np.testing.assert_allclose(flat, np.clip(mean + bias, -1, 1))


def test_perfect_crowd_votes_unanimously():
    rng = np.random.default_rng(0)
    pool = annotator_pool(rng, pool_size=20, num_classes=C, mean_error=0.0)
    labels = rng.integers(0, C, 500)
    onehot = np.eye(C)[labels]
    votes, crowd = crowd_votes(rng, onehot, np.ones(500), pool, annotators=10)
    assert (votes[np.arange(500), labels] == 10).all()
    assert (crowd == labels).all()


def test_crowd_votes_sum_and_majority_with_random_ties():
    rng = np.random.default_rng(3)
    pool = annotator_pool(rng, pool_size=40, num_classes=C, mean_error=0.2)
    labels, ex = _sample(n=4000)
    dist = ex["label_dist"].astype(np.float64)
    votes, crowd = crowd_votes(rng, dist, ex["intensity"].astype(np.float64), pool, annotators=10)
    assert votes.dtype == np.int64 and (votes.sum(1) == 10).all() and (votes >= 0).all()
    top = votes.max(1)
    assert (votes[np.arange(len(crowd)), crowd] == top).all()
    unique = (votes == top[:, None]).sum(1) == 1
    assert (crowd[unique] == votes[unique].argmax(1)).all()
    agree = (crowd == labels).mean()
    assert 0.7 < agree < 0.99  # noisy but mostly right

    # two annotators on a 50/50 blend: ties are frequent and both tied classes win sometimes
    half = np.zeros((2000, C))
    half[:, 3] = half[:, 4] = 0.5
    exact_pool = annotator_pool(rng, pool_size=4, num_classes=C, mean_error=0.0)
    votes, crowd = crowd_votes(rng, half, np.ones(2000), exact_pool, annotators=2)
    tied = (votes[:, 3] == 1) & (votes[:, 4] == 1)
    assert tied.mean() > 0.35
    share = (crowd[tied] == 3).mean()
    assert 0.4 < share < 0.6


def test_crowd_is_deterministic_for_a_seed():
    labels, ex = _sample(n=300)
    dist, inten = ex["label_dist"].astype(np.float64), ex["intensity"].astype(np.float64)
    pool = annotator_pool(np.random.default_rng(5), pool_size=40, num_classes=C, mean_error=0.2)
    a = crowd_votes(np.random.default_rng(9), dist, inten, pool, annotators=10)
    b = crowd_votes(np.random.default_rng(9), dist, inten, pool, annotators=10)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
