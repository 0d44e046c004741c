"""DMUE and DMUE-C: every loss term against hand-computed numbers, the branches, the skip rule, state."""

from __future__ import annotations

import math

import pytest
import torch

from noisyfer.config import AugmentConfig
from noisyfer.engine.augment import Augmenter
from noisyfer.engine.build import create_method
from noisyfer.errors import UserError
from noisyfer.methods.base import Batch, TrainingSetup
from noisyfer.methods.dmue import DMUEOptions
from noisyfer.methods.dmue_c import DMUECOptions
from noisyfer.methods.dmue_losses import (
    IGNORE,
    RAFDB_RAMP_STEPS,
    auxiliary_ce,
    auxiliary_targets,
    class_similarity,
    has_enough_per_class,
    latent_distribution,
    main_branch_dead,
    ramp_down,
    ramp_up,
    sharpen,
    soft_loss,
    sp_loss,
    sp_weight_for_steps,
)
from noisyfer.models import create_backbone

LN3 = math.log(3.0)


# -- pure functions ----------------------------------------------------------------------------
def test_ramps_at_chosen_epochs():
    # ramp_up = exp(-5 (1 - e/a)^2) up to a, then 1; ramp_down = 1 up to a, then exp(-(1 - a/e)^2)
    assert ramp_up(0, 10) == pytest.approx(math.exp(-5))  # 0.006738
    assert ramp_up(5, 10) == pytest.approx(0.2865048)  # exp(-1.25)
    assert ramp_up(10, 10) == 1.0 and ramp_up(12, 10) == 1.0
    assert ramp_down(5, 10) == 1.0 and ramp_down(10, 10) == 1.0
    assert ramp_down(20, 10) == pytest.approx(0.7788008)  # exp(-0.25)
    assert ramp_down(40, 10) == pytest.approx(0.5697828)  # exp(-0.5625)
    assert ramp_up(0, 0) == 1.0 and ramp_down(0, 0) == 1.0  # a = 0: no ramp


def test_skip_rule_needs_two_of_every_class():
    assert has_enough_per_class([2, 3, 2])
    assert not has_enough_per_class([2, 1, 5])
    assert not has_enough_per_class([4, 0, 4])


def test_auxiliary_labels_are_renumbered_without_their_class():
    # branch c keeps y < c, shifts y > c down by one, ignores y == c
    table = auxiliary_targets(torch.tensor([0, 1, 2, 3]), 4)
    assert table.tolist() == [[IGNORE, 0, 1, 2], [0, IGNORE, 1, 2], [0, 1, IGNORE, 2], [0, 1, 2, IGNORE]]


def test_auxiliary_ce_by_hand():
    labels = torch.tensor([0, 1, 2])
    logits = torch.zeros(3, 3, 2)
    logits[0, 1] = torch.tensor([LN3, 0.0])  # branch 0, sample 1 (target 0): -ln(3/4) = 0.287682
    logits[0, 2] = torch.tensor([0.0, 0.0])  # branch 0, sample 2 (target 1): ln 2 = 0.693147
    logits[1, :] = 0.0  # branch 1, samples 0 and 2: ln 2 each
    logits[2, 0] = torch.tensor([0.0, LN3])  # branch 2, sample 0 (target 0): ln 4 = 1.386294
    logits[2, 1] = torch.tensor([0.0, LN3])  # branch 2, sample 1 (target 1): 0.287682
    logits[0, 0] = logits[1, 1] = logits[2, 2] = torch.tensor([50.0, -50.0])  # ignored rows (y == c)
    # branch means 0.490415, 0.693147, 0.836988 -> mean 0.673517
    value = auxiliary_ce(logits, auxiliary_targets(labels, 3))
    assert value.item() == pytest.approx(0.6735167, abs=1e-6)


def test_sharpen_by_hand():
    # (0.25, 0.75)^(1/1.2) = (0.314980, 0.786836), sum 1.101816 -> (0.285874, 0.714126)
    out = sharpen(torch.tensor([[0.25, 0.75]]), 1.2)
    assert torch.allclose(out, torch.tensor([[0.2858736, 0.7141264]]), atol=1e-6)
    # T < 1 sharpens: (0.2, 0.8)^2 = (0.04, 0.64) -> (0.058824, 0.941176)
    assert torch.allclose(sharpen(torch.tensor([0.2, 0.8]), 0.5), torch.tensor([0.0588235, 0.9411765]), atol=1e-6)


def test_latent_distribution_inserts_zero_at_the_label():
    # sample 0 (label 0): branch 0 over classes {1, 2}, logits (0, ln 3) -> (0.25, 0.75) -> (0, .25, .75)
    # sample 1 (label 2): branch 2 over classes {0, 1}, logits (ln 4, 0) -> (0.8, 0.2) -> (.8, .2, 0)
    # sample 2 (label 1): branch 1 over classes {0, 2}, logits (0, 0) -> (0.5, 0.5) -> (.5, 0, .5)
    own = torch.tensor([[0.0, LN3], [math.log(4.0), 0.0], [0.0, 0.0]], requires_grad=True)
    latent = latent_distribution(own, torch.tensor([0, 2, 1]), temperature=1.0)
    expected = torch.tensor([[0.0, 0.25, 0.75], [0.8, 0.2, 0.0], [0.5, 0.0, 0.5]])
    assert torch.allclose(latent, expected, atol=1e-6)
    assert not latent.requires_grad  # a target, detached
    sharpened = latent_distribution(own[:1], torch.tensor([0]), temperature=1.2)
    assert torch.allclose(sharpened, torch.tensor([[0.0, 0.2858736, 0.7141264]]), atol=1e-6)


def test_soft_loss_by_hand():
    # main softmax of zero logits = 1/3 each, masked at the label: (0, 1/3, 1/3) and (1/3, 1/3, 0)
    # against (0, .25, .75) and (.8, .2, 0): squares 0, .006944, .173611, .217778, .017778, 0 -> mean .069352
    latent = torch.tensor([[0.0, 0.25, 0.75], [0.8, 0.2, 0.0]])
    value = soft_loss(torch.zeros(2, 3), torch.tensor([0, 2]), latent)
    assert value.item() == pytest.approx(0.0693519, abs=1e-6)


def test_sp_loss_by_hand():
    # labels 0, 1, 2; main features f0 = (1, 0), f1 = (0, 1), f2 = (1, 1): G_main = [[1,0,1],[0,1,1],[1,1,2]]
    labels = torch.tensor([0, 1, 2])
    main = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    aux = torch.full((3, 3, 2), 99.0)  # rows of samples labelled c are ignored by branch c
    aux[0, 1], aux[0, 2] = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    aux[1, 0], aux[1, 2] = torch.tensor([1.0, 1.0]), torch.tensor([1.0, 1.0])
    aux[2, 0], aux[2, 1] = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 3.0])
    # branch 0 (samples 1, 2): G_main rows (1,1)/sqrt2, (1,2)/sqrt5; G_aux = I
    #   -> ((1-.707107)^2 + .707107^2 + .447214^2 + (1-.894427)^2) / 4 = 0.199233
    # branch 1 (samples 0, 2): same G_main rows; G_aux = all 2 -> rows (.707107, .707107)
    #   -> (0 + 0 + (.707107-.447214)^2 + (.707107-.894427)^2) / 4 = 0.025658
    # branch 2 (samples 0, 1): G_main = I, G_aux = diag(4, 9) -> I -> 0
    value = sp_loss(aux, main, labels)
    assert value.item() == pytest.approx((0.1992330 + 0.0256584 + 0.0) / 3, abs=1e-6)


def test_class_similarity_by_hand():
    # f0 = f1 = (1, 0) class 0; f2 = f3 = (0, 1) class 1; f4 = (1, 1), f5 = (1, -1) class 2
    f = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]])
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    s = class_similarity(f, labels, 3)
    r = 1 / math.sqrt(2)
    # row 0: means (1, 0, r) -> (1, 0, r); row 2: (0, 1, 0); row 4: (r, r, 0.5) -> (1, 1, 0)
    # row 5: (r, -r, 0.5) -> (1, 0, (0.5 + r) / (2r) = 0.853553)
    assert torch.allclose(s[0], torch.tensor([1.0, 0.0, r]), atol=1e-6)
    assert torch.allclose(s[2], torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
    assert torch.allclose(s[4], torch.tensor([1.0, 1.0, 0.0]), atol=1e-5)
    assert torch.allclose(s[5], torch.tensor([1.0, 0.0, 0.8535534]), atol=1e-6)
    assert torch.equal(s[0], s[1]) and torch.equal(s[2], s[3])


# -- the method --------------------------------------------------------------------------------
QUIET = AugmentConfig(hflip=0.0, crop_padding=0.0, erasing=0.0, noise=0.0)  # train view = normalise only


def _method(name="dmue", *, num_classes=3, num_train=12, augment=QUIET, seed=0, **options):
    torch.manual_seed(seed)
    opts = (DMUECOptions if name == "dmue_c" else DMUEOptions)(**options)
    return create_method(name, backbone=create_backbone("resnet_tiny"), num_classes=num_classes,
                         num_train=num_train, options=opts, augment=Augmenter(augment, image_size=32), image_size=32)


def _batch(labels, indices=None, seed=5):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.tensor(labels)
    indices = torch.arange(len(labels)) if indices is None else torch.tensor(indices)
    return Batch(images=torch.rand(len(labels), 3, 32, 32, generator=gen), labels=labels, indices=indices)


def test_incomplete_batch_is_skipped_without_touching_state():
    method = _method()
    method.train()
    before = {k: v.clone() for k, v in method.state_dict().items()}
    out = method.training_step(_batch([0, 0, 1, 1, 2]), epoch=1)  # one sample of class 2
    assert out.loss is None
    assert all(torch.equal(before[k], v) for k, v in method.state_dict().items())


def test_skipping_every_batch_is_an_error_and_mostly_skipping_a_warning():
    method = _method()
    method.train()
    info = TrainingSetup(labels=torch.tensor([0, 0, 1, 1, 2]), columns={}, class_names=("a", "b", "c"), epochs=1,
                         steps_per_epoch=1, device=torch.device("cpu"))
    with pytest.raises(UserError, match=r"c \(1\)"):
        method.setup(info)
    method.on_epoch_start(1)
    method.training_step(_batch([0, 0, 1, 1, 2]), epoch=1)
    with pytest.raises(UserError, match="all 1 batches of epoch 1"):
        method.on_epoch_end(1)
    method.on_epoch_start(2)
    for labels in ([0, 0, 1, 1, 2], [0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2]):
        method.training_step(_batch(labels), epoch=2)
    with pytest.warns(UserWarning, match="skipped 2 of 3 batches"):
        method.on_epoch_end(2)


def test_step_combines_the_terms_with_the_ramps_and_updates_sample_state():
    method = _method(ramp_epoch=10.0)
    method.train()
    batch = _batch([0, 1, 2, 0, 1, 2, 0, 1], indices=[11, 3, 5, 0, 7, 2, 9, 4])
    out = method.training_step(batch, epoch=6)  # e = 5 completed epochs
    logs = {k: float(v) for k, v in out.logs.items()}
    assert logs["ramp_up"] == pytest.approx(0.2865048) and logs["ramp_down"] == 1.0
    expected = logs["ramp_up"] * (logs["ce_main"] + 0.5 * logs["soft"] + 1000.0 * logs["sp"]) + logs["aux"]
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)
    out.loss.backward()
    assert method.uncertainty[0].weight.grad.abs().sum() > 0  # the MLP trains (unlike the public code)
    assert method.aux_weight.grad.abs().sum() > 0
    record = method.epoch_record()
    seen, unseen = batch.indices, torch.tensor([1, 6, 8, 10])
    latent = record["latent_dist"][seen]
    assert torch.allclose(latent.sum(1), torch.ones(8), atol=1e-6)
    assert torch.equal(latent.gather(1, batch.labels.view(-1, 1)), torch.zeros(8, 1))
    assert torch.equal(record["latent_dist"][unseen], torch.zeros(4, 3))
    scores = record["clean_score"]
    assert ((scores[seen] > 0) & (scores[seen] < 1)).all() and (scores[seen] != 1).all()
    assert torch.equal(scores[unseen], torch.ones(4))
    assert method.training_step(batch, epoch=1).logs["ramp_up"] == pytest.approx(math.exp(-5))


def test_sp_detach_aux_keeps_l_sp_out_of_the_auxiliary_branches():
    batch = _batch([0, 1, 2, 0, 1, 2, 0, 1])
    grads = {}
    for detach, sp_weight in ((True, 1000.0), (True, 0.0), (False, 1000.0)):
        method = _method(sp_detach_aux=detach, sp_weight=sp_weight)
        method.train()
        torch.manual_seed(4)
        method.training_step(batch, epoch=11).loss.backward()
        grads[(detach, sp_weight)] = (method.aux_weight.grad.clone(), method.necks.weight.grad[3].clone())
    assert torch.allclose(grads[(True, 1000.0)][0], grads[(True, 0.0)][0], atol=1e-7)  # aux untouched by L_sp
    assert not torch.allclose(grads[(True, 1000.0)][1], grads[(True, 0.0)][1])  # main neck still pulled by it
    assert not torch.allclose(grads[(False, 1000.0)][0], grads[(True, 0.0)][0])  # public code: both move


def test_loop_and_batched_branches_agree():
    images = torch.rand(6, 3, 32, 32)
    results = []
    for mode in ("loop", "batched"):
        method = _method(branch_forward=mode, dropout=0.0)
        for stage in method.branches.aux:  # make the copies differ from the main stage
            for p in stage.parameters():
                p.data.add_(0.05 * torch.randn_like(p))
        method.train()
        torch.manual_seed(2)
        out = method.forward_branches(method.augment.train(images))
        (out.main_logits.square().sum() + out.aux_logits.square().sum() + out.pooled.square().sum()).backward()
        results.append((out.pooled.detach(), method.branches.aux[1][0].bn2.running_mean.clone(),
                        method.backbone.layer4[0].bn1.running_var.clone(), method.branches.aux[2][0].conv1.weight.grad,
                        method.backbone.layer4[0].conv2.weight.grad))
    for loop, batched in zip(*results):
        assert torch.allclose(loop, batched, atol=1e-5, rtol=1e-4)


def test_prediction_uses_the_main_branch_only():
    method = _method()
    method.eval()
    x = torch.rand(3, 3, 32, 32)
    before = method.predict(x)
    with torch.no_grad():
        for stage in method.branches.aux:
            for p in stage.parameters():
                p.add_(1.0)
        method.aux_weight.add_(1.0)
        method.necks.weight[:3].add_(1.0)
        method.necks.running_mean[:3].add_(1.0)
    assert torch.equal(method.predict(x), before)
    with torch.no_grad():
        method.backbone.layer4[0].conv1.weight.mul_(-1.0)
    assert not torch.allclose(method.predict(x), before)


def test_param_groups_and_frozen_uncertainty():
    method = _method(head_lr_ratio=10.0)
    groups = method.param_groups()
    assert [g.lr_scale for g in groups] == [1.0, 10.0] and all(g.weight_decay is None for g in groups)
    ids = [id(p) for g in groups for p in g.params]
    assert len(ids) == len(set(ids)) == sum(1 for p in method.parameters() if p.requires_grad)
    heads = {id(p) for p in groups[1].params}
    assert id(method.aux_weight) in heads and id(method.fc.weight) in heads
    assert all(id(p) in heads for p in method.uncertainty.parameters())
    frozen = _method(train_uncertainty=False)
    assert not any(p.requires_grad for p in frozen.uncertainty.parameters())
    listed = {id(p) for g in frozen.param_groups() for p in g.params}
    assert not any(id(p) in listed for p in frozen.uncertainty.parameters())


def test_options_are_validated():
    for field, value in [("temperature", 0.0), ("dropout", 1.0), ("sp_weight", -1.0), ("head_lr_ratio", 0.0),
                         ("branch_forward", "threads")]:
        with pytest.raises(ValueError, match=field):
            DMUEOptions(**{field: value})
    with pytest.raises(ValueError, match="gamma"):
        DMUECOptions(gamma=-0.1)


# -- dmue_c --------------------------------------------------------------------------------------
def test_dmue_c_adds_center_losses_on_main_and_auxiliary_branches():
    labels = [0, 1, 2, 0, 1, 2, 0, 1]
    batch = _batch(labels)
    method = _method("dmue_c", gamma=0.01, center_alpha=1.0)
    method.train()
    pooled = method.forward_branches(method.augment.train(batch.images)).pooled.detach()
    out = method.training_step(batch, epoch=11)  # e = 10: both ramps are 1
    y = batch.labels
    # centers start at 0, so L_C = mean ||x||^2 over the rows each branch uses
    main = pooled[3].square().sum(1).mean()
    aux = torch.stack([pooled[c][y != c].square().sum(1).mean() for c in range(3)]).mean()
    assert out.logs["center_main"].item() == pytest.approx(main.item(), rel=1e-4)
    assert out.logs["center_aux"].item() == pytest.approx(aux.item(), rel=1e-4)
    plain = out.logs["ce_main"] + 0.5 * out.logs["soft"] + 1000 * out.logs["sp"] + out.logs["aux"]
    assert out.loss.item() == pytest.approx((plain + 0.01 * (main + aux)).item(), rel=1e-5)
    # alpha = 1: new center = (sum of the class's features) / (1 + count)
    assert torch.allclose(method.center_main.centers[2], pooled[3][y == 2].sum(0) / 3, atol=1e-4)
    # branch 1 never sees class 1; its class 1 is the renumbered class 2 (samples 2 and 5)
    assert torch.allclose(method.center_aux[1].centers[1], pooled[1][y == 2].sum(0) / 3, atol=1e-4)
    assert torch.allclose(method.center_aux[1].centers[0], pooled[1][y == 0].sum(0) / 4, atol=1e-4)
    assert torch.allclose(method.center_aux[0].centers[0], pooled[0][y == 1].sum(0) / 4, atol=1e-4)


def test_dmue_c_without_auxiliary_centers():
    method = _method("dmue_c", aux_center=False)
    method.train()
    out = method.training_step(_batch([0, 1, 2, 0, 1, 2]), epoch=1)
    assert "center_aux" not in out.logs and len(method.center_aux) == 0
    assert torch.isfinite(out.loss)


# -- L_sp's weight against the run's length, and the collapse check -------------------------------


def _setup_info(steps_per_epoch, labels=(0, 1, 2) * 4):
    return TrainingSetup(labels=torch.tensor(labels), columns={}, class_names=("a", "b", "c"), epochs=30,
                         steps_per_epoch=steps_per_epoch, device=torch.device("cpu"))


def test_sp_weight_reduces_to_the_papers_on_a_rafdb_sized_run_and_shrinks_with_the_ramp_steps():
    # RAF-DB: 12,271 faces // batch 72 = 170 steps per epoch, ramp epoch 10 -> 1,700 steps -> the paper's 1000
    assert RAFDB_RAMP_STEPS == 1700
    assert sp_weight_for_steps(1000.0, 170 * 10) == 1000.0
    assert sp_weight_for_steps(1000.0, 3900 * 6) == 1000.0  # AffectNet (280k faces, ramp epoch 6): capped
    # the memorization benchmark: 1,000 faces // 64 = 15 steps, ramp epoch 10 -> 150 steps -> 1000 (150 / 1700)^2
    assert sp_weight_for_steps(1000.0, 15 * 10) == pytest.approx(7.785467)
    assert sp_weight_for_steps(1000.0, 15 * 10, power=1.0) == pytest.approx(88.235294)
    assert sp_weight_for_steps(1000.0, None) == 1000.0
    method = _method(ramp_epoch=10.0)
    assert method.sp_weight == 1000.0  # before setup: the given weight
    method.setup(_setup_info(170))
    assert method.sp_weight == 1000.0 and method.resolved["ramp_steps"] == 1700
    method = _method(ramp_epoch=10.0)
    method.setup(_setup_info(15))
    assert method.sp_weight == pytest.approx(7.785467) and method.resolved["sp_weight"] == pytest.approx(7.785467)
    # the step uses the scaled weight
    method.train()
    out = method.training_step(_batch([0, 1, 2, 0, 1, 2, 0, 1]), epoch=12)
    logs = {k: float(v) for k, v in out.logs.items()}
    expected = logs["ramp_up"] * (logs["ce_main"] + 0.5 * logs["soft"] + 7.785467 * logs["sp"]) + \
        logs["ramp_down"] * logs["aux"]
    assert logs["ramp_up"] == 1.0 and out.loss.item() == pytest.approx(expected, rel=1e-5)
    fixed = _method(ramp_epoch=10.0, sp_weight_scaling="none")
    fixed.setup(_setup_info(15))
    assert fixed.sp_weight == 1000.0
    with pytest.raises(ValueError, match="sp_weight_scaling"):
        DMUEOptions(sp_weight_scaling="epochs")


def _dead(name="dmue", **options):
    """A main branch that outputs zero logits: its cross-entropy is ln K whatever it sees."""
    method = _method(name, **options)
    with torch.no_grad():
        method.fc.weight.zero_()
    method.fc.weight.requires_grad_(False)
    method.train()
    return method


def _epoch(method, epoch, batches=2):
    method.on_epoch_start(epoch)
    for i in range(batches):
        out = method.training_step(_batch([0, 1, 2, 0, 1, 2], seed=epoch * 10 + i), epoch=epoch)
        assert float(out.logs["ce_main"]) == pytest.approx(LN3, abs=1e-6)
    return method.on_epoch_end(epoch)


@pytest.mark.parametrize("name", ["dmue", "dmue_c"])
def test_collapse_check_stops_a_dead_main_branch_after_two_full_weight_epochs(name):
    assert main_branch_dead(0.97 * LN3, 3) and not main_branch_dead(0.96 * LN3, 3)
    method = _dead(name, ramp_epoch=0.0)
    assert _epoch(method, 1)["ce_main_epoch"] == pytest.approx(LN3, abs=1e-6)  # first dead epoch: a count
    with pytest.raises(UserError, match=rf"{name}: the main branch collapsed.*ln 3 = 1.099.*method.sp_weight"):
        _epoch(method, 2)
    # during the ramp (main terms not yet at full weight) a dead main branch is not counted
    ramped = _dead(name, ramp_epoch=10.0)
    for epoch in (1, 2, 3):
        _epoch(ramped, epoch)
    # and the check can be turned off
    off = _dead(name, ramp_epoch=0.0, collapse_check=False)
    for epoch in (1, 2, 3):
        _epoch(off, epoch)


def test_collapse_check_passes_a_learning_main_branch(tiny_overrides):
    import json

    import noisyfer
    from noisyfer.config import config_from_args

    result = noisyfer.train(config_from_args(None, tiny_overrides + [
        "method=dmue", "train.epochs=3", "method.ramp_epoch=0", "train.sampler=balanced", "method.head_lr_ratio=1"]))
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    ce = [row["ce_main_epoch"] for row in rows]
    assert ce[-1] < 0.97 * math.log(7) and ce[-1] < ce[0]
