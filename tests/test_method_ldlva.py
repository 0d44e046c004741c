"""LDLVA: neighbourhoods, similarity, target distributions, losses and state, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from noisyfer.config import AugmentConfig
from noisyfer.engine.augment import Augmenter
from noisyfer.engine.build import create_method
from noisyfer.engine.loader import TensorLoader
from noisyfer.errors import DataError, UserError
from noisyfer.methods.base import TrainingSetup
from noisyfer.methods.label_distribution import (
    aggregate_neighbours,
    center_repulsion,
    compare_label_distributions,
    kl_divergence,
    repulsion_gradient,
    soft_cross_entropy,
    target_distribution,
    update_centers,
    weighted_center_loss,
)
from noisyfer.methods.ldlva import LDLVAOptions
from noisyfer.methods.va_neighbours import local_similarity, nearest_neighbours, training_valence_arousal
from noisyfer.models import create_backbone
from tests.conftest import make_tiny_split

# Five points on the valence axis: 0, 0.1, 0.3, 0.7, 0.8 (arousal 0).
LINE = np.array([[0.0, 0.0], [0.1, 0.0], [0.3, 0.0], [0.7, 0.0], [0.8, 0.0]])


# -- neighbourhoods and similarity -------------------------------------------------------------

def test_nearest_neighbours_on_a_hand_made_set():
    # distances from 0: 0.1 (1), 0.3 (2), 0.7, 0.8; from 1: 0.1 (0), 0.2 (2); from 2: 0.2 (1), 0.3 (0), 0.4 (3);
    # from 3: 0.1 (4), 0.4 (2); from 4: 0.1 (3), 0.5 (2)
    assert nearest_neighbours(LINE, 2).tolist() == [[1, 2], [0, 2], [1, 0], [4, 2], [3, 2]]
    # in two dimensions: (0,0) (1,0) (0,2) (3,3): from (0,2) -> (0,0) at 2, (1,0) at sqrt 5, (3,3) at sqrt 10
    square = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    assert nearest_neighbours(square, 3)[2].tolist() == [0, 1, 3]


def test_nearest_neighbours_never_list_the_sample_itself_even_among_duplicates():
    points = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [5.0, 5.0]])
    found = nearest_neighbours(points, 2)
    assert all(i not in row for i, row in enumerate(found.tolist()))
    assert sorted(found[0].tolist()) == [1, 2] and sorted(found[1].tolist()) == [0, 2]
    with pytest.raises(UserError, match="num_neighbours"):
        nearest_neighbours(points, 4)


def test_local_similarity_eq2():
    # s = exp(-d^2 / delta^2), delta 0.5: sample 0's neighbours at d^2 0.01 and 0.09 -> exp(-0.04), exp(-0.36)
    s = local_similarity(LINE, np.array([[1, 2]] * 5), 0.5)
    assert s[0].tolist() == pytest.approx([0.9607894, 0.6976763], abs=1e-6)
    # sample 3 (0.7) to 1 (0.1) and 2 (0.3): d^2 0.36, 0.16 -> exp(-1.44) = 0.2369278, exp(-0.64) = 0.5272924
    assert s[3].tolist() == pytest.approx([0.2369278, 0.5272924], abs=1e-6)


# -- where valence-arousal comes from -----------------------------------------------------------

def test_valence_arousal_from_columns_and_clear_errors():
    cols = {"pseudo_valence": np.array([0.1, 0.2]), "pseudo_arousal": np.array([-0.1, 0.5]), "other": np.zeros(2)}
    va = training_valence_arousal(num_samples=2, columns=cols)
    assert va.tolist() == [[0.1, -0.1], [0.2, 0.5]]
    with pytest.raises(UserError, match=r"no column\(s\) \['valence'\].*pseudo_arousal, pseudo_valence"):
        training_valence_arousal(num_samples=2, columns={**cols, "arousal": np.zeros(2)},
                                 column_names=("valence", "arousal"))
    cols["pseudo_arousal"] = np.array([np.nan, 0.0])
    with pytest.raises(DataError, match="sample 0 is not finite"):
        training_valence_arousal(num_samples=2, columns=cols)


def test_valence_arousal_files(tmp_path):
    good = tmp_path / "va.npy"
    np.save(good, np.array([[0.5, 0.25], [-1.0, 0.0], [0.0, 1.0]]))
    assert training_valence_arousal(num_samples=3, file=good)[1].tolist() == [-1.0, 0.0]
    with pytest.raises(DataError, match=r"va.npy: expected an array of shape \(4, 2\).*got \(3, 2\)"):
        training_valence_arousal(num_samples=4, file=good)
    table = tmp_path / "va.csv"
    table.write_text("index,arousal,valence\n2,0.3,0.1\n0,0.5,-0.5\n1,0.0,0.9\n")
    assert training_valence_arousal(num_samples=3, file=table).tolist() == [[-0.5, 0.5], [0.9, 0.0], [0.1, 0.3]]
    table.write_text("valence,arousal\n0.1,0.2\n0.3,high\n")
    with pytest.raises(DataError, match="va.csv:3: arousal 'high' is not a number"):
        training_valence_arousal(num_samples=2, file=table)
    table.write_text("valence,arousal\n0.1,0.2\n")
    with pytest.raises(DataError, match="va.csv: 1 data rows, expected 2"):
        training_valence_arousal(num_samples=2, file=table)
    table.write_text("v,a\n0.1,0.2\n")
    with pytest.raises(DataError, match="va.csv:1: header must name"):
        training_valence_arousal(num_samples=1, file=table)
    with pytest.raises(DataError, match="missing.npy: valence-arousal file not found"):
        training_valence_arousal(num_samples=1, file=tmp_path / "missing.npy")
    with pytest.raises(UserError, match="must be .npy or .csv"):
        (tmp_path / "va.txt").write_text("0 0\n")
        training_valence_arousal(num_samples=1, file=tmp_path / "va.txt")


# -- target distribution and losses -------------------------------------------------------------

P_NEIGHBOURS = torch.tensor([[[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]]])


def test_aggregate_and_target_eq5_eq6():
    # c = (0.75, 0.25): d~ = 0.75 (0.6, 0.3, 0.1) + 0.25 (0.2, 0.2, 0.6) = (0.5, 0.275, 0.225)
    aggregated, has = aggregate_neighbours(P_NEIGHBOURS, torch.tensor([[0.75, 0.25]]))
    assert aggregated[0].tolist() == pytest.approx([0.5, 0.275, 0.225]) and has.tolist() == [True]
    # contributions are normalised: doubling them changes nothing
    assert torch.allclose(aggregate_neighbours(P_NEIGHBOURS, torch.tensor([[1.5, 0.5]]))[0], aggregated)
    # label 2, lambda 0.4: d = 0.6 (0, 0, 1) + 0.4 (0.5, 0.275, 0.225) = (0.2, 0.11, 0.69)
    d = target_distribution(torch.tensor([[0.0, 0.0, 1.0]]), aggregated, torch.tensor([0.4]), has)
    assert d[0].tolist() == pytest.approx([0.2, 0.11, 0.69])
    # no contributing neighbour: the label alone, and lambda gets no gradient
    lam = torch.tensor([0.4], requires_grad=True)
    empty, none = aggregate_neighbours(P_NEIGHBOURS, torch.zeros(1, 2))
    d = target_distribution(torch.tensor([[0.0, 1.0, 0.0]]), empty, lam, none)
    assert none.tolist() == [False] and d[0].tolist() == [0.0, 1.0, 0.0]
    soft_cross_entropy(torch.zeros(1, 3), d).sum().backward()
    assert lam.grad.item() == 0.0


def test_soft_cross_entropy_eq1_and_lambda_gradient_eq9():
    logits = torch.tensor([[0.0, math.log(2.0), 0.0]])  # softmax (1/4, 1/2, 1/4)
    # CE((0.2, 0.11, 0.69), f) = 0.89 ln 4 + 0.11 ln 2 = 1.3100482
    assert soft_cross_entropy(logits, torch.tensor([[0.2, 0.11, 0.69]])).item() == pytest.approx(1.3100482, abs=1e-6)
    # Eq. 9 with label 1, d~ = (0.5, 0.275, 0.225): CE(d~, f) - CE(l, f) = (0.725 ln 4 + 0.275 ln 2) - ln 2 = 0.5025317
    lam = torch.tensor([0.3], requires_grad=True)
    d = target_distribution(torch.tensor([[0.0, 1.0, 0.0]]), torch.tensor([[0.5, 0.275, 0.225]]), lam,
                            torch.tensor([True]))
    soft_cross_entropy(logits, d).sum().backward()
    assert lam.grad.item() == pytest.approx(0.5025317, abs=1e-6)  # > 0: the label fits better, lambda goes down


def test_discriminative_loss_terms_eq10():
    features = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    centers = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    # sample 0 (label 1, w 0.5): 0.5 * 0.5 * |(0, 1)|^2 = 0.25; sample 1 (label 0, w 1): 0.5 * 9 = 4.5
    loss = weighted_center_loss(features, centers, torch.tensor([1, 0]), torch.tensor([0.5, 1.0]))
    assert loss.tolist() == pytest.approx([0.25, 4.5])
    # centres (0,0) (1,1) (0,2), scale 2: d^2 = 2, 4, 2 -> 2 (2 e^-1 + e^-2) over ordered pairs = 1.7421883
    three = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    assert center_repulsion(three, 2.0).item() == pytest.approx(1.7421883, abs=1e-6)


def test_repulsion_gradient_matches_autograd():
    centers = torch.randn(5, 4, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    center_repulsion(centers, 2.0).backward()
    assert torch.allclose(repulsion_gradient(centers.detach(), 2.0), centers.grad, atol=1e-6)


def test_center_update_wen_rule_with_uncertainty_weights():
    centers = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    features = torch.tensor([[1.0, 2.0], [3.0, 0.0], [2.0, 0.0]])
    labels, weights = torch.tensor([1, 0, 0]), torch.tensor([0.5, 1.0, 1.0])
    # class 0: (mu - (3,0)) + (mu - (2,0)) = (-5, 0), / (1 + 2) -> mu0 = -0.5 * (-5/3, 0) = (0.833333, 0)
    # class 1: 0.5 (mu - (1,2)) = (0, -0.5), / (1 + 1) -> mu1 = (1, 1) - 0.5 (0, -0.25) = (1, 1.125)
    new = update_centers(centers, features, labels, weights, lr=0.5, repulsion_weight=0.0, scale=2.0)
    assert new.tolist() == [pytest.approx([5 / 6, 0.0]), pytest.approx([1.0, 1.125])]
    assert centers.tolist() == [[0.0, 0.0], [1.0, 1.0]]  # inputs untouched
    pushed = update_centers(centers, features, labels, weights, lr=0.5, repulsion_weight=0.1, scale=2.0)
    assert torch.allclose(pushed, new - 0.5 * 0.1 * repulsion_gradient(new, 2.0))
    # the push moves the centres apart
    assert (pushed[0] - pushed[1]).norm() > (new[0] - new[1]).norm()


def test_kl_of_learned_distributions_against_one_hot():
    reference = np.array([[0.5, 0.5], [1.0, 0.0]])
    # the floor renormalises (1, 0) to (1, 1e-6) / (1 + 1e-6): KL = ln(1 + 1e-6) for the second row
    assert kl_divergence(reference, reference).tolist() == pytest.approx([0.0, math.log1p(1e-6)], abs=1e-12)
    # one-hot (1, 0) floored at 1e-6: 0.5 ln(0.5 (1 + 1e-6)) + 0.5 ln(0.5e6 (1 + 1e-6)) = 0.5 ln 2.5e5 + ~1e-6
    assert kl_divergence(reference[:1], np.array([[1.0, 0.0]]))[0] == pytest.approx(6.2146091, abs=1e-6)
    out = compare_label_distributions(reference, reference, np.array([0, 1]))
    assert out["kl_learned"] == pytest.approx(math.log1p(1e-6) / 2, abs=1e-12)
    # one-hot of the given labels: 6.2146091 for the first row; for the second, given 1 vs reference (1, 0):
    # ln(1 / (1e-6 / (1 + 1e-6))) = ln(1e6 + 1) = 13.8155116
    assert out["kl_one_hot"] == pytest.approx((6.2146091 + 13.8155116) / 2, abs=1e-5)
    assert out["argmax_given"] == 0.5 and out["argmax_learned"] == 1.0


# -- the method -------------------------------------------------------------------------------

def _ldlva(data, *, fetch=None, **options):
    torch.manual_seed(0)
    opts = LDLVAOptions(**options)
    method = create_method("ldlva", backbone=create_backbone("resnet_tiny"), num_classes=data.num_classes,
                           num_train=len(data), options=opts, image_size=data.images.shape[1],
                           augment=Augmenter(AugmentConfig(), image_size=data.images.shape[1]))
    loader = TensorLoader(data, batch_size=16, device=torch.device("cpu"))
    method.setup(TrainingSetup(labels=loader.labels, columns=data.columns, class_names=data.class_names,
                               epochs=1, steps_per_epoch=4, device=torch.device("cpu"),
                               fetch=loader.batch if fetch else None))
    method.train()
    return method, loader


def test_setup_builds_neighbours_and_one_hot_targets():
    data = make_tiny_split(64)
    method, _ = _ldlva(data, va_columns=["valence", "arousal"])
    va = np.stack([data.columns["valence"], data.columns["arousal"]], 1)
    assert method.neighbours.tolist() == nearest_neighbours(va, 8).tolist()
    assert torch.equal(method.state["target"].argmax(1), torch.as_tensor(data.labels))
    with pytest.raises(UserError, match="needs the engine's fetch"):
        _ldlva(data, neighbours="forward")
    with pytest.raises(UserError, match=r"no column\(s\) \['va'"):
        _ldlva(data, va_columns=["va", "arousal"])


def test_memory_bank_rows_change_exactly_for_the_batch():
    data = make_tiny_split(64)
    method, loader = _ldlva(data)
    batch = loader.batch(torch.tensor([3, 10, 11, 40]))
    out = method.training_step(batch, epoch=1)
    assert out.logs["neighbour_coverage"].item() == 0.0  # nothing seen yet: targets are the labels
    filled = method.state["bank_filled"]
    assert filled.nonzero().flatten().tolist() == [3, 10, 11, 40]
    assert torch.allclose(method.state["bank_probs"][batch.indices], out.logits.detach().softmax(1))
    untouched = torch.ones(64, dtype=torch.bool)
    untouched[batch.indices] = False
    assert torch.all(method.state["bank_probs"][untouched] == 1.0 / 7)
    assert torch.all(method.state["bank_features"][untouched] == 0)
    assert torch.all(method.state["bank_features"][batch.indices].abs().sum(1) > 0)


def test_lambda_gradient_sign_follows_eq9_inside_the_method():
    data = make_tiny_split(64)
    method, loader = _ldlva(data, lambda_init=0.5)
    every = torch.arange(64)
    # every bank row: half the mass on class 0, the rest spread (1/12 each) -> d~ is that for every sample
    bank = torch.full((64, 7), 0.5 / 6)
    bank[:, 0] = 0.5
    method.state.update("bank_probs", every, bank)
    method.state.update("bank_filled", every, torch.ones(64, dtype=torch.bool))
    with torch.no_grad():  # f = softmax(5, 0, ..., 0) whatever the image: f_0 = e^5 / (e^5 + 6)
        method.fc.weight.zero_()
        method.fc.bias.copy_(torch.tensor([5.0, 0, 0, 0, 0, 0, 0]))
    batch = next(iter(loader.train_batches(seed=0, epoch=1)))
    method.training_step(batch, epoch=1).loss.backward()
    grad = method.lambda_raw.grad
    # -ln f_0 = ln(1 + 6 e^-5) = 0.0396301, -ln f_j = 5.0396301; CE(d~, f) = 0.5 (0.0396301 + 5.0396301) = 2.5396301
    # Eq. 9 over a batch mean of 16: label 0 -> (2.5396301 - 0.0396301) / 16 = +0.15625 (lambda falls),
    # other labels -> (2.5396301 - 5.0396301) / 16 = -0.15625 (lambda rises); samples outside the batch: 0
    expected = torch.where(batch.labels == 0, 0.15625, -0.15625)
    assert torch.allclose(grad[batch.indices], expected, atol=1e-5)
    outside = torch.ones(64, dtype=torch.bool)
    outside[batch.indices] = False
    assert torch.all(grad[outside] == 0)
    # the engine's groups: lambda in its own SGD group without momentum or weight decay
    groups = method.param_groups()
    assert groups[1].params == [method.lambda_raw] and groups[1].optimizer.name == "sgd"
    assert groups[1].lr == 10.0 and groups[1].optimizer.settings["momentum"] == 0.0 and groups[1].weight_decay == 0.0
    assert all(p is not method.lambda_raw for p in groups[0].params)


def test_lambda_stays_in_unit_interval_and_epoch_record_shapes():
    data = make_tiny_split(64)
    method, loader = _ldlva(data)
    with torch.no_grad():
        method.lambda_raw.copy_(torch.linspace(-1.0, 2.0, 64))
    record = method.epoch_record()
    assert record["label_dist"].shape == (64, 7) and record["lambda"].shape == (64,)
    assert record["lambda"].min() == 0.0 and record["lambda"].max() == 1.0
    method.training_step(loader.batch(torch.arange(16)), epoch=1)
    assert method.lambda_raw.min() >= 0.0 and method.lambda_raw.max() <= 1.0  # projected before use
    sigmoid, _ = _ldlva(data, lambda_param="sigmoid", lambda_init=0.3775)
    assert sigmoid.lambdas().tolist() == pytest.approx([0.3775] * 64, abs=1e-6)
    assert torch.allclose(sigmoid.lambda_raw, torch.full((64,), -0.5), atol=1e-3)  # the code's sigmoid(0.5) on l


def test_forward_neighbours_option_uses_fetch():
    data = make_tiny_split(64)
    method, loader = _ldlva(data, fetch=True, neighbours="forward")
    out = method.training_step(loader.batch(torch.arange(16)), epoch=1)
    assert out.logs["neighbour_coverage"].item() == 1.0  # every neighbour forwarded, none from the bank
    assert torch.isfinite(out.loss)


@pytest.mark.parametrize("bad", [dict(num_neighbours=0), dict(delta=0.0), dict(neighbours="cache"),
                                 dict(lambda_param="sigmoid", lambda_init=0.0), dict(lambda_init=1.5),
                                 dict(va_columns=["valence"]), dict(calibration_dims=[0])])
def test_options_are_validated(bad):
    with pytest.raises(ValueError):
        LDLVAOptions(**bad)


def test_fixed_zero_lambda_without_discriminative_loss_is_plain_cross_entropy():
    # lambda_i = 0 fixed and gamma = 0: d_i = l_i (Eq. 6), L = CE (Eq. 1), whatever the neighbours predict
    data = make_tiny_split(64)
    method, loader = _ldlva(data, learn_lambda=False, lambda_init=0.0, gamma=0.0)
    every = torch.arange(64)
    method.state.update("bank_probs", every, torch.full((64, 7), 1.0 / 7))
    method.state.update("bank_filled", every, torch.ones(64, dtype=torch.bool))
    batch = loader.batch(torch.arange(16))
    out = method.training_step(batch, epoch=1)
    assert out.logs["neighbour_coverage"].item() == 1.0 and out.logs["target_label_mass"].item() == 1.0
    assert out.loss.item() == pytest.approx(torch.nn.functional.cross_entropy(out.logits, batch.labels).item(), abs=1e-6)
    assert method.centers.abs().sum().item() == 0.0  # no centre update without the discriminative loss
    assert len(method.param_groups()) == 1  # no lambda group
