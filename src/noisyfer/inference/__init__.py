"""Use a trained model: bundles, export to ONNX / TorchScript, face-level prediction on photos and videos."""
