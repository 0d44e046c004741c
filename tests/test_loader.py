from __future__ import annotations

import numpy as np
import torch

from noisyfer.engine.loader import TensorLoader, class_balanced_weights, epoch_order
from tests.conftest import make_tiny_split


def test_batches_carry_the_right_images_labels_and_indices():
    data = make_tiny_split(50)
    noisy = (data.labels + 1) % 7
    loader = TensorLoader(data, batch_size=16, device=torch.device("cpu"), labels=noisy, columns=("label_dist",))
    seen = []
    for batch in loader.train_batches(seed=0, epoch=1):
        idx = batch.indices.numpy()
        expected = torch.from_numpy(data.images[idx]).permute(0, 3, 1, 2)
        assert batch.images.dtype == torch.uint8 and torch.equal(batch.images, expected)  # as stored
        assert batch.labels.tolist() == noisy[idx].tolist()
        assert torch.equal(batch.columns["label_dist"], torch.from_numpy(data.columns["label_dist"][idx]))
        seen.extend(idx.tolist())
    assert len(seen) == 48 and len(set(seen)) == 48  # drop_last: 3 full batches, no repeats
    assert loader.num_batches(drop_last=False) == 4
    assert sum(len(b) for b in loader.eval_batches()) == 50


def test_epoch_order_depends_only_on_seed_and_epoch():
    a = epoch_order(num_samples=100, seed=1, epoch=3, sampler="random")
    b = epoch_order(num_samples=100, seed=1, epoch=3, sampler="random")
    c = epoch_order(num_samples=100, seed=1, epoch=4, sampler="random")
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert sorted(a.tolist()) == list(range(100))


def test_balanced_sampler_equalizes_classes():
    labels = np.array([0] * 900 + [1] * 90 + [2] * 10)
    w = class_balanced_weights(labels, 4)
    assert w[0].item() == 1 / 900 and w[-1].item() == 1 / 10
    draws = np.concatenate([epoch_order(num_samples=1000, seed=0, epoch=e, sampler="balanced", labels=labels,
                                        num_classes=4).numpy() for e in range(1, 31)])
    freq = np.bincount(labels[draws], minlength=4) / len(draws)
    # 30000 draws, p = 1/3 per class: binomial std ~ 0.0027; 4 std tolerance
    assert np.all(np.abs(freq[:3] - 1 / 3) < 0.011) and freq[3] == 0
