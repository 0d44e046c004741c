"""MTCNN's three networks (Zhang, Zhang, Li & Qiao, IEEE SPL 2016) and their published weights.

P-Net proposes face windows over an image pyramid (fully convolutional, a 12 x 12 window every 2
pixels), R-Net (24 x 24 crops) rejects most of them, O-Net (48 x 48 crops) gives the final face
probability, box offsets and five landmarks. Inputs are RGB scaled as ``(pixel - 127.5) / 128``.

The weights are the authors' Caffe models as converted to PyTorch state dicts by facenet-pytorch
(MIT licence), shipped inside its 2.6.0 wheel as ``facenet_pytorch/data/{pnet,rnet,onet}.pt``. Module
names here match their keys so they load strictly. R-Net and O-Net flatten their last feature map in
width, height, channel order (:func:`_flatten_whc`), the layout of the original MATLAB/Caffe release;
with PyTorch's channel-first flattening the same weights flag dozens of non-faces on scikit-image's
``astronaut.png``, with this order they find the one face at 0.9998.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import UserError

#: Input scaling of all three networks: (pixel - MEAN) * SCALE.
PIXEL_MEAN = 127.5
PIXEL_SCALE = 0.0078125  # 1 / 128

WEIGHTS_PACKAGE = "facenet_pytorch"
WEIGHTS_INSTALL = "pip install --no-deps facenet-pytorch==2.6.0"


def _flatten_whc(x: Tensor) -> Tensor:
    return x.permute(0, 3, 2, 1).flatten(1)


class PNet(nn.Module):
    """Proposal network: (N, 3, H, W) -> face probability (N, H', W') and box offsets (N, 4, H', W')."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return torch.softmax(self.conv4_1(x), dim=1)[:, 1], self.conv4_2(x)


class RNet(nn.Module):
    """Refinement network: (N, 3, 24, 24) -> face probability (N,) and box offsets (N, 4)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu4(self.dense4(_flatten_whc(self.prelu3(self.conv3(x)))))
        return torch.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    """Output network: (N, 3, 48, 48) -> face probability (N,), box offsets (N, 4), landmarks (N, 10).

    Landmarks come as the five x positions then the five y positions, as fractions of the input
    crop's width and height, in the order left eye, right eye, nose, left and right mouth corner.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu5(self.dense5(_flatten_whc(self.prelu4(self.conv4(x)))))
        return torch.softmax(self.dense6_1(x), dim=1)[:, 1], self.dense6_2(x), self.dense6_3(x)


def weights_dir() -> Path:
    """Folder of the published MTCNN weights in the installed facenet-pytorch wheel (not imported)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or spec.origin is None:
        raise UserError(f"MTCNN weights not found: they ship in the facenet-pytorch 2.6.0 wheel; install it with "
                        f"`{WEIGHTS_INSTALL}` (make setup does), or use detector=haar")
    folder = Path(spec.origin).parent / "data"
    missing = [name for name in ("pnet.pt", "rnet.pt", "onet.pt") if not (folder / name).is_file()]
    if missing:
        raise UserError(f"MTCNN weights {', '.join(missing)} missing from {folder}; reinstall with `{WEIGHTS_INSTALL}`")
    return folder


def load_networks(device: torch.device, folder: str | Path | None = None) -> tuple[PNet, RNet, ONet]:
    """The three networks with the published weights, in eval mode on ``device``."""
    folder = Path(folder) if folder is not None else weights_dir()
    nets = (PNet(), RNet(), ONet())
    for net, name in zip(nets, ("pnet", "rnet", "onet")):
        path = folder / f"{name}.pt"
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise UserError(f"MTCNN weights not found: {path}") from None
        net.load_state_dict(state, strict=True)
        net.to(device).eval()
        net.requires_grad_(False)
    return nets
