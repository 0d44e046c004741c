"""Per-batch drawing context: pixel grids mapped to face coordinates, plus the faces' parameters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .expressions import CONTROL_INDEX
from .shapes import F32, per_face, rgb

#: Where the face sits in an undisturbed image: face units -> image half-widths, and the vertical
#: offset of the face origin (image coordinates run from -1 to 1, y downward). Eyes land at ~41% of
#: the height and the chin near the bottom edge, like aligned crops of FER datasets.
BASE_SCALE = 1.1
BASE_OFFSET_Y = -0.12


@dataclass
class Frame:
    """Coordinates and parameters of a batch of B faces rendered at S x S pixels.

    Attributes
    ----------
    x, y
        Image coordinates of the pixel centres, shapes (1, 1, S) and (1, S, 1) in -1..1 (per face,
        (B, 1, W) and (B, H, 1), in a window).
    u, v
        Face coordinates (B, S, S) of every pixel after head roll, scale and shift.
    uf
        Horizontal face coordinate after undoing the head yaw (the frontal position of the surface
        point seen at the pixel); features (eyes, nose, mouth) are drawn in (uf, v).
    pix
        Pixels per face unit, (B, 1, 1).
    """

    size: int
    x: np.ndarray
    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    uf: np.ndarray
    pix: np.ndarray
    identity: dict[str, np.ndarray]
    nuisance: dict[str, np.ndarray]
    controls: np.ndarray

    @classmethod
    def build(
        cls,
        identity: dict,
        nuisance: dict,
        controls: np.ndarray,
        *,
        size: int,
        rows: np.ndarray | None = None,
        cols: np.ndarray | None = None,
    ) -> "Frame":
        """Frame over the whole image, or over pixels ``rows`` (B, H) x ``cols`` (B, W) of each face."""
        grid = ((np.arange(size, dtype=F32) + 0.5) * (2.0 / size) - 1.0).astype(F32)
        x = grid[None, None, :] if cols is None else grid[cols][:, None, :]
        y = grid[None, :, None] if rows is None else grid[rows][:, :, None]
        scale = per_face(BASE_SCALE * nuisance["scale"])
        roll = nuisance["roll"].astype(np.float64)
        cos_r, sin_r = per_face(np.cos(roll)), per_face(np.sin(roll))
        dx = x - per_face(nuisance["shift_x"])  # (B, 1, S)
        dy = y - per_face(nuisance["shift_y"] + BASE_OFFSET_Y)  # (B, S, 1)
        u = cos_r * dx + sin_r * dy
        u /= scale
        v = cos_r * dy - sin_r * dx
        v /= scale
        pix = scale * F32(size / 2.0)

        radius = per_face(identity["face_w"] * 1.05)
        yaw = nuisance["yaw"].astype(np.float64)
        xr = np.clip(u / radius, -1.0, 1.0)
        depth = 1.0 - xr * xr
        np.sqrt(depth, out=depth)
        depth *= per_face(np.sin(yaw))
        xr *= per_face(np.cos(yaw))
        xr -= depth
        xr *= radius
        return cls(size, x, y, u, v, xr, pix, identity, nuisance, controls)

    def window(
        self, u_range: tuple[float, float], v_range: tuple[float, float]
    ) -> tuple["Frame", tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """A frame over the pixels that can show face region ``u_range`` x ``v_range`` (feature
        coordinates), and the (face, row, column) index arrays of those pixels in the image.

        The window is one size for the batch (the largest needed) and kept inside the image, so it
        always holds the part of the region that is in the picture.
        """
        ident, nuis = self.identity, self.nuisance
        radius = ident["face_w"].astype(np.float64) * 1.05
        yaw = nuis["yaw"].astype(np.float64)
        # frontal feature position -> position in the turned head (inverse of the yaw warp)
        us = [radius * np.sin(np.arcsin(np.clip(u / radius, -1, 1)) + yaw) for u in u_range]
        scale = BASE_SCALE * nuis["scale"].astype(np.float64)
        roll = nuis["roll"].astype(np.float64)
        cos_r, sin_r = np.cos(roll), np.sin(roll)
        px, py = [], []
        for u in us:
            for v in v_range:
                x = nuis["shift_x"] + scale * (cos_r * u - sin_r * v)
                y = nuis["shift_y"] + BASE_OFFSET_Y + scale * (sin_r * u + cos_r * v)
                px.append((x + 1.0) * (self.size / 2.0) - 0.5)
                py.append((y + 1.0) * (self.size / 2.0) - 0.5)
        px, py = np.stack(px, 1), np.stack(py, 1)
        lo_x, lo_y = np.floor(px.min(1)).astype(int) - 1, np.floor(py.min(1)).astype(int) - 1
        w = int(min(self.size, (np.ceil(px.max(1)).astype(int) + 2 - lo_x).max()))
        h = int(min(self.size, (np.ceil(py.max(1)).astype(int) + 2 - lo_y).max()))
        lo_x = np.clip(lo_x, 0, self.size - w)
        lo_y = np.clip(lo_y, 0, self.size - h)
        rows = lo_y[:, None] + np.arange(h)[None, :]
        cols = lo_x[:, None] + np.arange(w)[None, :]
        sub = Frame.build(ident, nuis, self.controls, size=self.size, rows=rows, cols=cols)
        faces = np.arange(self.batch)[:, None, None]
        return sub, (faces, rows[:, :, None], cols[:, None, :])

    @property
    def batch(self) -> int:
        return self.u.shape[0]

    def p(self, name: str) -> np.ndarray:
        """Identity or nuisance scalar ``name`` as (B, 1, 1)."""
        src = self.identity if name in self.identity else self.nuisance
        return per_face(src[name])

    def colour(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Identity or nuisance colour ``name`` as three (B, 1, 1) planes."""
        src = self.identity if name in self.identity else self.nuisance
        return rgb(src[name])

    def control(self, name: str) -> np.ndarray:
        """Expression control ``name`` of each face, (B,)."""
        return self.controls[:, CONTROL_INDEX[name]]

    def c(self, name: str, lo: float | None = 0.0, hi: float | None = None) -> np.ndarray:
        """Expression control ``name`` as (B, 1, 1), clipped to [lo, hi] (None: unbounded)."""
        value = self.controls[:, CONTROL_INDEX[name]]
        if lo is not None or hi is not None:
            value = np.clip(value, lo, hi)
        return per_face(value)

    def take(self, idx: np.ndarray) -> "Frame":
        """The faces at ``idx`` (a new frame over copies)."""
        return Frame(
            self.size,
            self.x if self.x.shape[0] == 1 else self.x[idx],
            self.y if self.y.shape[0] == 1 else self.y[idx],
            self.u[idx],
            self.v[idx],
            self.uf[idx],
            self.pix[idx],
            {k: a[idx] for k, a in self.identity.items()},
            {k: a[idx] for k, a in self.nuisance.items()},
            self.controls[idx],
        )


def on_subset(canvas: np.ndarray, frame: Frame, mask: np.ndarray, draw) -> None:
    """Run ``draw(sub_canvas, sub_frame)`` on the faces where ``mask`` is true only, in place."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return
    if idx.size == frame.batch:
        draw(canvas, frame)
        return
    sub = canvas[:, idx]
    draw(sub, frame.take(idx))
    canvas[:, idx] = sub
