"""MTCNN face detection (Zhang et al., IEEE SPL 2016) in plain PyTorch, batched over images and scales.

Three stages, as in the paper and the authors' release (the suppression thresholds too):

1. The image pyramid: scales ``12 / min_face_size * scale_factor**k`` down to a 12-pixel short side.
   All scales of all images of one size go through P-Net in ONE forward: the scaled images are tiled
   side by side on a canvas (:func:`pyramid_layout`), and only the 12 x 12 windows that lie wholly
   inside one tile are read, so each window sees exactly the pixels it would see alone. Windows with
   face probability >= ``thresholds[0]`` are kept, suppressed within their scale (IoU 0.5) then
   across scales (IoU 0.7), moved by P-Net's box offsets and squared.
2. Each candidate is cropped (zero outside the image) and resized to 24 x 24; R-Net keeps those with
   probability >= ``thresholds[1]``; suppression at IoU 0.7, then R-Net's offsets, then squaring.
3. 48 x 48 crops through O-Net: probability >= ``thresholds[2]``, five landmarks (placed in the box
   O-Net saw), O-Net's offsets, and a last suppression by intersection over the smaller box (0.7)
   so that a box inside a bigger one goes.

Defaults are those of the authors' released detector: thresholds 0.6 / 0.7 / 0.7, scale factor 0.709
(the area halves from one scale to the next), 20-pixel smallest face. Crops are sampled bilinearly
with supersampling (an average over up to 4 x 4 samples per output pixel), which stands for the area
resize of the reference implementation.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import UserError
from .boxes import batched_nms, regress_boxes, square_boxes
from .detectors import FaceDetector, check_images, register_detector
from .face import Face, sort_faces
from .mtcnn_nets import PIXEL_MEAN, PIXEL_SCALE, load_networks

#: P-Net's window side and stride in pixels of a scaled image.
WINDOW, STRIDE = 12, 2
#: Overlap thresholds of the suppressions: within a scale, across scales, after R-Net, after O-Net (min).
NMS_SCALE, NMS_IMAGE, NMS_RNET, NMS_ONET = 0.5, 0.7, 0.7, 0.7
#: Crops per R-/O-Net forward.
CROP_BATCH = 2048
#: Canvas pixels per P-Net forward: fewer images per batch when they are large (P-Net's first layers
#: hold about 40 bytes per canvas pixel; a 12-megapixel photo alone needs a ~10-megapixel canvas).
CANVAS_PIXELS = 1 << 23


def pyramid_scales(height: int, width: int, *, min_face_size: float, scale_factor: float) -> list[float]:
    """Scales at which a ``min_face_size`` face becomes a 12-pixel window, down to a 12-pixel short side."""
    scale = WINDOW / min_face_size
    short = min(height, width) * scale
    scales = []
    while short >= WINDOW:
        scales.append(scale)
        scale *= scale_factor
        short *= scale_factor
    return scales


@lru_cache(maxsize=32)
def pyramid_layout(height: int, width: int, scales: tuple[float, ...]) -> tuple[tuple[int, int, int, int], ...]:
    """Where each scaled image lies on the canvas: ``(top, left, scaled height, scaled width)`` per scale.

    The largest image sits at the left; the others fill columns to its right, top to bottom (a new
    column when the next one does not fit under the previous). Offsets are even, so every tile's
    window grid coincides with P-Net's stride-2 output grid.
    """
    sizes = [(math.ceil(height * s), math.ceil(width * s)) for s in scales]
    canvas_h = sizes[0][0]
    tiles, columns = [], []  # columns: [left, width, next free top]
    right = 0
    for h, w in sizes:
        for column in columns:
            if column[2] + h <= canvas_h and w <= column[1]:
                tiles.append((column[2], column[0], h, w))
                column[2] += h + (h % 2)
                break
        else:
            columns.append([right, w, h + (h % 2)])
            tiles.append((0, right, h, w))
            right += w + (w % 2)
    return tuple(tiles)


def _normalise(x: Tensor) -> Tensor:
    return (x - PIXEL_MEAN) * PIXEL_SCALE


def resize(images: Tensor, size: tuple[int, int]) -> Tensor:
    """``(B, 3, H, W)`` resized to ``size``: reductions average over each output pixel's area, as the
    reference implementation's resize does (an antialiased bilinear reduction, tried first, let P-Net
    fire on more non-faces); enlargements (faces under 12 pixels searched) are bilinear."""
    if size[0] <= images.shape[-2] and size[1] <= images.shape[-1]:
        return F.interpolate(images, size=size, mode="area")
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False)


def pyramid_levels(images: Tensor, layout) -> list[Tensor]:
    """The scaled images of ``layout``, normalised for the nets. The first level is reduced from the
    images, the smaller ones from the first level, so a large photo is read once, not once per scale."""
    first = resize(images, layout[0][2:])
    levels = [first] + [resize(first if h <= first.shape[-2] and w <= first.shape[-1] else images, (h, w))
                        for _, _, h, w in layout[1:]]
    return [_normalise(level) for level in levels]


def tile_pyramid(images: Tensor, layout) -> Tensor:
    """The canvas ``(B, 3, H, W)`` holding every scaled image of the batch at its place in ``layout``."""
    canvas_h = max(top + h for top, _, h, _ in layout)
    canvas_w = max(left + w for _, left, _, w in layout)
    canvas = images.new_zeros(images.shape[0], 3, canvas_h, canvas_w)
    for (top, left, h, w), level in zip(layout, pyramid_levels(images, layout)):
        canvas[:, :, top:top + h, left:left + w] = level
    return canvas


def _window_map(layout, out: tuple[int, int], device) -> Tensor:
    """``(H', W')`` tile index of each P-Net output cell whose window lies wholly in that tile, else -1."""
    tile_of = torch.full(out, -1, dtype=torch.long)
    for t, (top, left, h, w) in enumerate(layout):
        rows = (h - WINDOW) // STRIDE + 1
        cols = (w - WINDOW) // STRIDE + 1
        if rows > 0 and cols > 0:
            tile_of[top // STRIDE: top // STRIDE + rows, left // STRIDE: left // STRIDE + cols] = t
    return tile_of.to(device)


def crop_boxes(image: Tensor, boxes: Tensor, size: int) -> Tensor:
    """``size`` x ``size`` crops of ``boxes`` (k, 4) from one image ``(3, H, W)`` (pixel values, zero outside)."""
    if boxes.shape[0] == 0:
        return image.new_zeros(0, 3, size, size)
    height, width = image.shape[-2:]
    longest = float((boxes[:, 2:] - boxes[:, :2]).max())
    sub = int(min(4, max(1, math.ceil(longest / size))))  # samples per output pixel and axis
    n = size * sub
    steps = (torch.arange(n, device=image.device, dtype=image.dtype) + 0.5) / n
    xs = boxes[:, 0:1] + steps * (boxes[:, 2:3] - boxes[:, 0:1])  # (k, n) continuous pixel coordinates
    ys = boxes[:, 1:2] + steps * (boxes[:, 3:4] - boxes[:, 1:2])
    gx = (2 * xs / width - 1)[:, None, :].expand(-1, n, -1)
    gy = (2 * ys / height - 1)[:, :, None].expand(-1, -1, n)
    grid = torch.stack([gx, gy], dim=-1).reshape(1, -1, n, 2)  # boxes stacked along the grid's height
    crops = F.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    crops = crops.reshape(3, -1, n, n).permute(1, 0, 2, 3)
    return F.avg_pool2d(crops, sub) if sub > 1 else crops


@register_detector("mtcnn")
class MTCNN(FaceDetector):
    """MTCNN: face boxes and five landmarks (see the module docstring for the stages).

    Parameters
    ----------
    device
        ``auto``, ``cpu``, ``cuda``...
    min_face_size
        Smallest face side searched, in pixels.
    thresholds
        Face-probability thresholds of P-, R- and O-Net.
    scale_factor
        Ratio between successive pyramid scales.
    batch_size
        Images per P-Net forward (images of equal size are batched; fewer when their pyramid canvas
        would exceed :data:`CANVAS_PIXELS`).
    weights
        Folder holding ``pnet.pt``, ``rnet.pt``, ``onet.pt``; default: the facenet-pytorch wheel's.
    """

    name = "mtcnn"

    def __init__(self, *, device: str = "auto", min_face_size: float = 20.0,
                 thresholds: Sequence[float] = (0.6, 0.7, 0.7), scale_factor: float = 0.709, batch_size: int = 16,
                 weights: str | None = None):
        from ..engine.build import resolve_device

        if min_face_size < 1:
            raise UserError(f"mtcnn: min_face_size must be >= 1 pixel, got {min_face_size}")
        if not 0 < scale_factor < 1:
            raise UserError(f"mtcnn: scale_factor must lie in (0, 1), got {scale_factor}")
        thresholds = tuple(float(t) for t in thresholds)
        if len(thresholds) != 3 or not all(0 <= t <= 1 for t in thresholds):
            raise UserError(f"mtcnn: thresholds must be three probabilities (P-, R-, O-Net), got {thresholds}")
        self.device = resolve_device(device)
        self.min_face_size = float(min_face_size)
        self.thresholds = thresholds
        self.scale_factor = float(scale_factor)
        self.batch_size = max(1, int(batch_size))
        self.pnet, self.rnet, self.onet = load_networks(self.device, weights)

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        images = check_images(images)
        results: list[list[Face]] = [[] for _ in images]
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, image in enumerate(images):
            by_shape.setdefault(image.shape[:2], []).append(i)
        with torch.inference_mode():
            for (height, width), indices in by_shape.items():
                step = max(1, min(self.batch_size, CANVAS_PIXELS // max(1, self._canvas_pixels(height, width))))
                for start in range(0, len(indices), step):
                    chunk = indices[start:start + step]
                    batch = torch.from_numpy(np.stack([images[i] for i in chunk])).to(self.device)
                    for i, faces in zip(chunk, self._detect_batch(batch.permute(0, 3, 1, 2).float())):
                        results[i] = faces
        return results

    def _canvas_pixels(self, height: int, width: int) -> int:
        scales = pyramid_scales(height, width, min_face_size=self.min_face_size, scale_factor=self.scale_factor)
        if not scales:
            return 0
        layout = pyramid_layout(height, width, tuple(scales))
        return max(t + h for t, _, h, _ in layout) * max(left + w for _, left, _, w in layout)

    def _detect_batch(self, images: Tensor) -> list[list[Face]]:
        """Faces of a batch ``(B, 3, H, W)`` of same-size images (pixel values 0..255)."""
        boxes, scores, owner = self._propose(images)
        boxes, scores, owner, _ = self._refine(self.rnet, images, boxes, owner, 24, self.thresholds[1])
        boxes = square_boxes(boxes)
        boxes, scores, owner, landmarks = self._refine(self.onet, images, boxes, owner, 48, self.thresholds[2])
        boxes, scores, owner, landmarks = (t.cpu().numpy() for t in (boxes, scores, owner, landmarks))
        faces: list[list[Face]] = [[] for _ in range(images.shape[0])]
        for box, score, b, points in zip(boxes, scores, owner, landmarks):
            faces[int(b)].append(Face(box=box, score=float(score), landmarks=points))
        return [sort_faces(f) for f in faces]

    def _propose(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Stage 1: P-Net over the tiled pyramid; squared candidate boxes, scores and image index."""
        height, width = images.shape[-2:]
        scales = pyramid_scales(height, width, min_face_size=self.min_face_size, scale_factor=self.scale_factor)
        empty = images.new_zeros(0, 4), images.new_zeros(0), torch.zeros(0, dtype=torch.long, device=images.device)
        if not scales:
            return empty
        layout = pyramid_layout(height, width, tuple(scales))
        prob, offsets = self.pnet(tile_pyramid(images, layout))
        tile_of = _window_map(layout, tuple(prob.shape[-2:]), images.device)
        hits = ((prob >= self.thresholds[0]) & (tile_of >= 0)).nonzero()  # (k, 3): image, row, column
        if hits.shape[0] == 0:
            return empty
        b, row, col = hits.unbind(1)
        tile = tile_of[row, col]
        geometry = torch.tensor([[top, left, h / height, w / width] for top, left, h, w in layout],
                                dtype=images.dtype, device=images.device)[tile]
        y1 = (row * STRIDE - geometry[:, 0]) / geometry[:, 2]
        x1 = (col * STRIDE - geometry[:, 1]) / geometry[:, 3]
        boxes = torch.stack([x1, y1, x1 + WINDOW / geometry[:, 3], y1 + WINDOW / geometry[:, 2]], dim=1)
        scores = prob[b, row, col]
        reg = offsets[b, :, row, col]
        keep = batched_nms(boxes, scores, b * len(layout) + tile, threshold=NMS_SCALE)
        boxes, scores, reg, b = boxes[keep], scores[keep], reg[keep], b[keep]
        keep = batched_nms(boxes, scores, b, threshold=NMS_IMAGE)
        return square_boxes(regress_boxes(boxes[keep], reg[keep])), scores[keep], b[keep]

    def _refine(self, net, images: Tensor, boxes: Tensor, owner: Tensor, size: int, threshold: float):
        """Stages 2 and 3: crop, score, keep, suppress, move the boxes; landmarks from O-Net."""
        crops = torch.cat([crop_boxes(images[b], boxes[owner == b], size) for b in range(images.shape[0])])
        order = torch.cat([(owner == b).nonzero()[:, 0] for b in range(images.shape[0])])
        boxes, owner = boxes[order], owner[order]
        outputs = [net(_normalise(crops[i:i + CROP_BATCH])) for i in range(0, crops.shape[0], CROP_BATCH)]
        if not outputs:
            return boxes, boxes.new_zeros(0), owner, boxes.new_zeros(0, 5, 2)
        prob, reg, *rest = (torch.cat(parts) for parts in zip(*outputs))
        keep = prob >= threshold
        boxes, prob, reg, owner = boxes[keep], prob[keep], reg[keep], owner[keep]
        landmarks = boxes.new_zeros(boxes.shape[0], 5, 2)
        if rest:  # O-Net: landmarks in the box it saw, offsets applied before the last suppression
            points = rest[0][keep]
            wh = boxes[:, 2:] - boxes[:, :2]
            landmarks = torch.stack([boxes[:, None, 0] + points[:, :5] * wh[:, None, 0],
                                     boxes[:, None, 1] + points[:, 5:] * wh[:, None, 1]], dim=2)
            boxes = regress_boxes(boxes, reg)
            keep = batched_nms(boxes, prob, owner, threshold=NMS_ONET, mode="min")
            return boxes[keep], prob[keep], owner[keep], landmarks[keep]
        keep = batched_nms(boxes, prob, owner, threshold=NMS_RNET)
        return regress_boxes(boxes[keep], reg[keep]), prob[keep], owner[keep], landmarks[keep]
