"""Valence-arousal neighbourhoods of the training samples (LDLVA's auxiliary space).

Three steps, each a small public function:

- :func:`training_valence_arousal` reads the (N, 2) valence-arousal of the training samples, from
  two dataset columns (the simulator's ``pseudo_valence``/``pseudo_arousal``, AffectNet's
  ``valence``/``arousal``) or from a user file (``.npy`` of shape (N, 2), or ``.csv`` with a
  header naming ``valence`` and ``arousal`` columns and, optionally, an ``index`` column).
- :func:`nearest_neighbours` finds the K nearest other training samples of every sample.
- :func:`local_similarity` turns the distances into LDLVA's local similarity scores (Eq. 2).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import DataError, UserError


def training_valence_arousal(
    *,
    num_samples: int,
    columns: Mapping[str, np.ndarray] | None = None,
    column_names: Sequence[str] = ("pseudo_valence", "pseudo_arousal"),
    file: str | os.PathLike | None = None,
) -> np.ndarray:
    """Valence-arousal of every training sample, float64 (N, 2), from a file or two dataset columns.

    Parameters
    ----------
    num_samples
        Size of the training split (rows expected).
    columns
        The training split's columns (used when ``file`` is ``None``).
    column_names
        Names of the valence and the arousal column, in that order.
    file
        ``.npy`` (float array (N, 2)) or ``.csv`` (header with ``valence`` and ``arousal``, optional
        ``index``; one row per training sample, in dataset order unless ``index`` says otherwise).

    Raises
    ------
    UserError
        Missing columns (the message lists those the dataset has) or a file of another type.
    DataError
        A file that does not exist, has the wrong shape or row count, a non-numeric or non-finite
        value (the message names the file and line).
    """
    if file is not None:
        path = Path(file).expanduser()
        if not path.is_file():
            raise DataError("valence-arousal file not found", path=path)
        suffix = path.suffix.lower()
        if suffix == ".npy":
            va = _read_npy(path, num_samples)
        elif suffix == ".csv":
            va = _read_csv(path, num_samples)
        else:
            raise UserError(f"{path}: valence-arousal file must be .npy or .csv, got '{suffix or 'no suffix'}'")
        _check_finite(va, where=path)
        return va
    if len(column_names) != 2:
        raise UserError(f"valence-arousal columns: expected two names (valence, arousal), got {list(column_names)}")
    columns = columns or {}
    missing = [name for name in column_names if name not in columns]
    if missing:
        raise UserError(
            f"the training data has no column(s) {missing} for valence-arousal (it has: "
            f"{', '.join(sorted(columns)) or 'none'}); choose other columns or give a file with method.va_file"
        )
    va = np.stack([np.asarray(columns[name], dtype=np.float64).reshape(-1) for name in column_names], axis=1)
    if va.shape[0] != num_samples:
        raise DataError(f"valence-arousal columns have {va.shape[0]} rows, expected {num_samples}",
                        path=f"columns {list(column_names)}")
    _check_finite(va, where=f"columns {list(column_names)}")
    return va


def _read_npy(path: Path, num_samples: int) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"not a readable .npy array ({exc})", path=path) from None
    if array.ndim != 2 or array.shape != (num_samples, 2):
        raise DataError(f"expected an array of shape ({num_samples}, 2) (valence, arousal per training sample), "
                        f"got {array.shape}", path=path)
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise DataError(f"expected real numbers, got dtype {array.dtype}", path=path)
    return array.astype(np.float64)


def _read_csv(path: Path, num_samples: int) -> np.ndarray:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise DataError("empty file; expected a header with valence and arousal columns", path=path, line=1)
    header = [name.strip().lower() for name in rows[0]]
    if "valence" not in header or "arousal" not in header:
        raise DataError(f"header must name 'valence' and 'arousal' columns, got {rows[0]}", path=path, line=1)
    at = {name: header.index(name) for name in ("valence", "arousal")}
    index_col = header.index("index") if "index" in header else None
    body = [(line, row) for line, row in enumerate(rows[1:], start=2) if any(cell.strip() for cell in row)]
    if len(body) != num_samples:
        raise DataError(f"{len(body)} data rows, expected {num_samples} (one per training sample)", path=path)
    va = np.empty((num_samples, 2), dtype=np.float64)
    seen = np.zeros(num_samples, dtype=bool)
    for position, (line, row) in enumerate(body):
        if len(row) != len(header):
            raise DataError(f"{len(row)} fields, the header has {len(header)}", path=path, line=line)
        target = position
        if index_col is not None:
            try:
                target = int(row[index_col])
            except ValueError:
                raise DataError(f"index '{row[index_col]}' is not an integer", path=path, line=line) from None
            if not 0 <= target < num_samples or seen[target]:
                problem = "repeated" if 0 <= target < num_samples else f"outside 0..{num_samples - 1}"
                raise DataError(f"index {target} is {problem}", path=path, line=line)
            seen[target] = True
        for j, name in enumerate(("valence", "arousal")):
            try:
                va[target, j] = float(row[at[name]])
            except ValueError:
                raise DataError(f"{name} '{row[at[name]]}' is not a number", path=path, line=line) from None
            if not np.isfinite(va[target, j]):
                raise DataError(f"{name} is {row[at[name]].strip()}, expected a finite number", path=path, line=line)
    return va


def _check_finite(va: np.ndarray, *, where: object) -> None:
    bad = np.flatnonzero(~np.isfinite(va).all(axis=1))
    if bad.size:
        raise DataError(f"valence-arousal of sample {int(bad[0])} is not finite ({va[bad[0]].tolist()})", path=where)


def nearest_neighbours(points: np.ndarray, k: int) -> np.ndarray:
    """Indices (N, k) int64 of the ``k`` nearest *other* points of every point (Euclidean), nearest first.

    A k-d tree (exact, deterministic) on float64 coordinates. A point never lists itself; among points
    at exactly the same distance the tree's order decides (the same on every run).
    """
    from sklearn.neighbors import NearestNeighbors

    points = np.asarray(points, dtype=np.float64)
    n = points.shape[0]
    if not 1 <= k < n:
        raise UserError(f"num_neighbours must be in 1..{n - 1} for {n} training samples, got {k}")
    tree = NearestNeighbors(n_neighbors=k + 1, algorithm="kd_tree").fit(points)
    found = tree.kneighbors(points, return_distance=False)
    # Drop each row's own index; where duplicates pushed it out of the k + 1, drop the farthest instead.
    is_self = found == np.arange(n)[:, None]
    is_self[~is_self.any(axis=1), -1] = True
    keep = np.argsort(is_self, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(found, keep, axis=1).astype(np.int64)


def local_similarity(points: np.ndarray, neighbours: np.ndarray, delta: float) -> np.ndarray:
    """LDLVA's Eq. 2: ``s_k^i = exp(-||a_i - a_k||^2 / delta^2)`` for each listed neighbour, float32 (N, K)."""
    points = np.asarray(points, dtype=np.float64)
    squared = ((points[:, None, :] - points[neighbours]) ** 2).sum(-1)
    return np.exp(-squared / float(delta) ** 2).astype(np.float32)
