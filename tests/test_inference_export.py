"""ONNX (onnxruntime parity) and TorchScript exports of every registered method's prediction path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from noisyfer.inference.bundle import bundle_from_state
from noisyfer.inference.export import INPUT_NAME, ONNX_OPSET, export, export_onnx, export_torchscript
from noisyfer.registry import METHODS
from tests.conftest import make_tiny_split
from tests.test_inference_bundle import random_method

ort = pytest.importorskip("onnxruntime", reason="ONNX export needs the 'export' extra (make setup installs it)")

#: Methods whose prediction path cannot be exported (name -> why); the README lists the same.
NOT_EXPORTABLE: dict[str, str] = {}


def _test_images(n: int = 24) -> torch.Tensor:
    return torch.from_numpy(make_tiny_split(n, seed=5).images).permute(0, 3, 1, 2).contiguous()


@pytest.mark.parametrize("name", [n for n in METHODS.names() if n not in NOT_EXPORTABLE])
def test_onnx_logits_match_pytorch(name, tmp_path):
    method, metadata = random_method(name)
    model = bundle_from_state(metadata, method.state_dict(), prune=False).build()
    path = export_onnx(model, tmp_path / f"{name}.onnx", metadata={"method": name})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    images = _test_images()
    logits, probs = session.run(None, {INPUT_NAME: images.numpy()})  # 24 images: the batch axis is dynamic
    with torch.no_grad():
        reference = model(images).numpy()
    diff = float(np.abs(logits - reference).max())
    print(f"{name}: max |onnx - torch| logit difference {diff:.2e}")
    assert diff <= 1e-4
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert np.array_equal(logits.argmax(1), reference.argmax(1))


def test_onnx_file_states_opset_batch_axis_and_metadata(tmp_path):
    import onnx

    method, metadata = random_method("lrn")
    bundle = bundle_from_state(metadata, method.state_dict())
    path = tmp_path / "lrn.onnx"
    bundle_path = bundle.save(tmp_path / "lrn.pt")
    export(bundle_path, path, template="rafdb")
    graph = onnx.load(str(path))
    assert any(op.domain in ("", "ai.onnx") and op.version == ONNX_OPSET for op in graph.opset_import)
    images = graph.graph.input[0]
    assert images.name == INPUT_NAME and images.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = images.type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 32, 32]
    meta = json.loads({p.key: p.value for p in graph.metadata_props}["noisyfer"])
    assert meta["class_names"] == metadata["class_names"] and meta["opset"] == ONNX_OPSET
    assert meta["template"] == "rafdb" and meta["input"]["dtype"] == "uint8"


def test_torchscript_round_trip(tmp_path):
    method, metadata = random_method("ncctfer")
    model = bundle_from_state(metadata, method.state_dict()).build()
    extra = {"noisyfer.json": ""}
    path = export_torchscript(model, tmp_path / "ncctfer.ts", metadata=metadata)
    loaded = torch.jit.load(str(path), _extra_files=extra)
    images = _test_images(5)
    logits, probs = loaded(images)
    with torch.no_grad():
        assert torch.allclose(logits, model(images), atol=1e-5, rtol=0)
    assert torch.allclose(probs.sum(1), torch.ones(5))
    assert json.loads(extra["noisyfer.json"])["method"] == "ncctfer"
