"""No method's training step makes an accelerator wait for the host (checked on the CPU).

:class:`noisyfer.host_sync.HostSyncRecorder` records, while the code takes the accelerator's path,
every operation that synchronises with the host on CUDA: values read back, boolean-mask indexing,
``nonzero``, ``unique``, ``bincount``. Parametrized over the registry, in each method's steady state
(relabeling, the two-view phase and optional paths switched on).
"""

from __future__ import annotations

import pytest
import torch

from noisyfer.config import AugmentConfig
from noisyfer.engine.augment import Augmenter
from noisyfer.engine.build import create_method
from noisyfer.engine.loader import TensorLoader
from noisyfer.host_sync import HostSyncRecorder, host_reads_are_free
from noisyfer.methods.base import TrainingSetup
from noisyfer.methods.sample_state import SampleState
from noisyfer.models import create_backbone
from noisyfer.registry import METHODS
from tests.conftest import make_tiny_split

#: Options that put a method in the phase a run spends most of its steps in, and switch optional
#: per-step paths on, so that the recorder sees them.
STEADY_STATE: dict[str, dict] = {
    "scn": {"relabel_epoch": 1},
    "scn_c": {"relabel_epoch": 1},
    "rul": {"relabel": True, "relabel_epoch": 1},
    "rul_c": {"relabel": True, "relabel_epoch": 1},
    "ncctfer": {"warmup_epochs": 0},
}


def test_steady_state_names_registered_methods():
    assert set(STEADY_STATE) <= set(METHODS.names())


def test_recorder_finds_reads_and_masks_but_not_device_work_or_host_tensors():
    x = torch.tensor([0.5, -1.0, 2.0])
    host = torch.tensor([1, 2, 2])
    with HostSyncRecorder() as recorder:
        recorder.mark_host(host)
        x.sum() * 2                                  # queued on the device: no wait
        x[torch.tensor([0, 2])]                      # integer indices: no wait
        torch.bincount(host, minlength=4).tolist()   # computed on the host: no wait
        x[x > 0]                                     # boolean mask: output size read back
        float(x.max())                               # value read back
        torch.unique(x)
        assert not host_reads_are_free(x)            # code takes the accelerator's path inside
    assert host_reads_are_free(x)
    assert recorder.counts() == {"aten.index.Tensor": 1, "aten._local_scalar_dense.default": 1,
                                 "aten._unique2.default": 1}
    lines = recorder.report().splitlines()
    assert len(lines) == 3 and all("test_host_sync.py:" in line for line in lines)  # the caller's lines


def test_sample_state_update_keeps_the_last_occurrence_without_a_mask():
    state = SampleState(5)
    state.register("value", torch.zeros(5))
    indices, values = torch.tensor([3, 1, 3, 4]), torch.tensor([1.0, 2.0, 3.0, 4.0])
    with HostSyncRecorder() as recorder:
        state.update("value", indices, values)
    assert state["value"].tolist() == [0.0, 2.0, 0.0, 3.0, 4.0]
    assert not recorder.events, recorder.report()
    with HostSyncRecorder() as recorder:  # a masked selection, as update used to keep the last occurrence
        values[indices > 1].sum()
    assert "noisyfer" not in recorder.report() and "aten.index.Tensor" in recorder.report()


@pytest.mark.parametrize("name", METHODS.names())
def test_training_step_never_waits_for_the_host(name):
    data = make_tiny_split(96)
    torch.manual_seed(0)
    entry = METHODS.get(name)
    options = entry.options(**STEADY_STATE.get(name, {})) if entry.options else None
    size = data.images.shape[1]
    method = create_method(name, backbone=create_backbone("resnet_tiny"), num_classes=data.num_classes,
                           num_train=len(data), options=options, image_size=size,
                           augment=Augmenter(AugmentConfig(), image_size=size))
    loader = TensorLoader(data, batch_size=32, device=torch.device("cpu"), columns=method.columns)
    method.setup(TrainingSetup(labels=loader.labels, columns=data.columns, class_names=data.class_names,
                               epochs=2, steps_per_epoch=loader.num_batches(drop_last=True),
                               device=torch.device("cpu")))
    method.train()
    events, steps = [], 0
    for epoch in (1, 2):
        method.on_epoch_start(epoch)
        for batch in loader.train_batches(seed=0, epoch=epoch, sampler="balanced"):
            with HostSyncRecorder() as recorder:
                recorder.mark_host(batch.host_labels)
                out = method.training_step(batch, epoch=epoch)
            events += recorder.events
            if out.loss is not None:
                steps += 1
                out.loss.backward()
        method.on_epoch_end(epoch)
    assert steps > 0
    summary = HostSyncRecorder()
    summary.events = events
    assert not events, f"{name}'s training step waits for the host:\n{summary.report()}"
