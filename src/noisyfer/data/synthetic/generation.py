"""Dataset generation: chunks of faces drawn in parallel, written in noisyfer's format, cached.

Determinism: every random draw comes from a generator seeded by ``SeedSequence(seed,
spawn_key=...)``: the class labels of a split from ``(split,)``, the annotator pool from
``(ANNOTATOR_STREAM,)``, and each chunk of :data:`CHUNK_SIZE` faces from ``(split, chunk index)``.
Chunks are independent, so the output is the same for any number of worker processes.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

from ...errors import DataError, UserError
from ..format import COLUMNS, FERData, check_dataset_target, load_dataset, read_meta, save_dataset
from .annotation import annotator_pool, crowd_votes, prior_mean_va, pseudo_valence_arousal
from .config import GENERATOR_VERSION, SynthConfig, exact_class_counts
from .expressions import CONTROLS, VA_COORDINATES, sample_expressions, true_valence_arousal
from .identity import sample_identities, sample_nuisances
from .render import render_faces

#: Faces per chunk: the unit of parallel work and of random streams (changing it changes the data).
CHUNK_SIZE = 64
SPLITS = ("train", "test")
ANNOTATOR_STREAM = 1000

_NUISANCE_FIELDS = (
    "roll_max_deg",
    "yaw_max_deg",
    "scale_jitter",
    "shift_max",
    "lighting",
    "p_glasses",
    "p_sunglasses",
    "p_hand",
    "p_mask",
    "p_clutter",
    "p_blur",
    "noise_max",
)


def split_labels(config: SynthConfig, split: str) -> np.ndarray:
    """True labels of a split: exactly ``exact_class_counts(prior, size)`` per class, shuffled."""
    split_id = SPLITS.index(split)
    size = config.num_train if split == "train" else config.num_test
    counts = exact_class_counts(config.class_prior(), size)
    labels = np.repeat(np.arange(config.num_classes, dtype=np.int64), counts)
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(split_id,)))
    return rng.permutation(labels)


@lru_cache(maxsize=8)
def _pool(seed: int, pool_size: int, num_classes: int, error: float) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(ANNOTATOR_STREAM,)))
    return annotator_pool(rng, pool_size=pool_size, num_classes=num_classes, mean_error=error)


def generate_chunk(config: SynthConfig, split: str, index: int, labels: np.ndarray) -> dict:
    """Faces ``index * CHUNK_SIZE ...`` of ``split`` (whose true labels are ``labels``).

    Returns a dict with ``images`` and every per-sample column.
    """
    split_id = SPLITS.index(split)
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(split_id, index)))
    n = labels.shape[0]
    ex = sample_expressions(
        rng,
        labels,
        num_classes=config.num_classes,
        ambiguity=config.ambiguity,
        random_pair=config.blend_random_pair,
        intensity_range=(config.intensity_min, config.intensity_max),
    )
    dist, intensity = ex["label_dist"].astype(np.float64), ex["intensity"].astype(np.float64)
    va = true_valence_arousal(dist, intensity)
    pseudo = pseudo_valence_arousal(
        rng,
        va,
        dist,
        prior_mean=prior_mean_va(config.class_prior()),
        noise=config.pseudo_va_noise,
        shrinkage=config.pseudo_va_shrinkage,
    )
    pool = _pool(config.seed, config.pool_size, config.num_classes, config.annotator_error)
    votes, crowd = crowd_votes(rng, dist, intensity, pool, annotators=config.annotators)
    identity = sample_identities(rng, n)
    nuisance = sample_nuisances(rng, n, **{k: getattr(config, k) for k in _NUISANCE_FIELDS})
    images = render_faces(ex["controls"], identity, nuisance, size=config.image_size, rng=rng)
    f32 = np.float32
    return {
        "images": images,
        "true_label": labels.astype(np.int64),
        "label_dist": ex["label_dist"],
        "valence": va[:, 0].astype(f32),
        "arousal": va[:, 1].astype(f32),
        "pseudo_valence": pseudo[:, 0].astype(f32),
        "pseudo_arousal": pseudo[:, 1].astype(f32),
        "votes": votes,
        "crowd_label": crowd,
        "ambiguity": ex["ambiguity"],
        "intensity": ex["intensity"],
    }


def _run_chunk(task: tuple) -> dict:
    return generate_chunk(*task)


def _mp_context():
    """``fork`` on Linux, ``spawn`` elsewhere.

    Workers only run numpy code, so forking is safe even after the parent initialised torch or
    CUDA; it starts instantly, and unlike spawn/forkserver it does not re-run the caller's script
    in every worker (which fails in scripts without an ``if __name__ == "__main__"`` guard). Where
    fork is unavailable or unsafe (macOS system frameworks), scripts need that guard.
    """
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def resolve_workers(workers: int) -> int:
    """``workers`` processes, 0 meaning one per CPU core; raises :class:`UserError` when negative."""
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise UserError(f"workers must be an integer >= 0 (0: one per CPU core), got {workers!r}")
    return int(workers) or (os.cpu_count() or 1)


def generate(config: SynthConfig, *, workers: int = 0) -> dict[str, FERData]:
    """Generate the ``train`` and ``test`` splits of ``config`` in memory.

    Parameters
    ----------
    config
        The simulator settings.
    workers
        Worker processes (0: one per CPU core, 1: in this process). The output does not depend on it.

    Returns
    -------
    dict
        ``{"train": FERData, "test": FERData}``; ``labels`` are the true labels and the columns are
        those listed in the module docstring of ``noisyfer.data.synthetic``.
    """
    if not isinstance(config, SynthConfig):
        raise UserError(f"config must be a SynthConfig, got {type(config).__name__}")
    workers = resolve_workers(workers)
    tasks, labels = [], {}
    for split in SPLITS:
        labels[split] = split_labels(config, split)
        for index, start in enumerate(range(0, labels[split].shape[0], CHUNK_SIZE)):
            tasks.append((config, split, index, labels[split][start : start + CHUNK_SIZE]))

    size = config.image_size
    images = {s: np.empty((labels[s].shape[0], size, size, 3), dtype=np.uint8) for s in SPLITS}
    columns: dict[str, list[dict]] = {s: [] for s in SPLITS}
    filled = {s: 0 for s in SPLITS}

    def collect(task: tuple, result: dict) -> None:
        split = task[1]
        chunk = result.pop("images")
        images[split][filled[split] : filled[split] + chunk.shape[0]] = chunk
        filled[split] += chunk.shape[0]
        columns[split].append(result)

    # results are copied into place as they arrive, in chunk order, so memory peaks at one copy
    workers = min(workers, len(tasks))
    if workers <= 1:
        for task in tasks:
            collect(task, _run_chunk(task))
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context()) as pool:
            for task, result in zip(tasks, pool.map(_run_chunk, tasks)):
                collect(task, result)

    out = {}
    for split in SPLITS:
        parts = columns[split] or [_empty_columns(config)]
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        out[split] = FERData(
            images=images[split],
            labels=cols["true_label"].copy(),
            class_names=config.class_names,
            columns=cols,
        )
    return out


def _empty_columns(config: SynthConfig) -> dict:
    """Columns of a split without faces (right dtypes and widths)."""
    empty = generate_chunk(config, "train", 0, np.zeros(0, dtype=np.int64))
    empty.pop("images")
    return empty


def dataset_info(config: SynthConfig) -> dict:
    """The ``info`` block stored in ``meta.json``: generator, config, and what the columns mean."""
    names = config.class_names
    return {
        "generator": "noisyfer.synthetic",
        "generator_version": GENERATOR_VERSION,
        "config": config.to_dict(),
        "config_hash": config.stable_hash(),
        "class_order": list(names),
        "controls": list(CONTROLS),
        "va_coordinates": {n: VA_COORDINATES[i].tolist() for i, n in enumerate(names)},
        "columns": {
            k: COLUMNS[k]
            for k in (
                "true_label",
                "label_dist",
                "valence",
                "arousal",
                "pseudo_valence",
                "pseudo_arousal",
                "votes",
                "crowd_label",
                "ambiguity",
                "intensity",
            )
        },
    }


def generate_to(config: SynthConfig, root: str | os.PathLike, *, workers: int = 0, overwrite: bool = False) -> Path:
    """Generate ``config`` and write it to ``root`` atomically.

    ``root`` must be new or empty, or (with ``overwrite``) hold a noisyfer dataset to replace; see
    :func:`~noisyfer.data.format.save_dataset`. The target is checked before any face is drawn.
    """
    root = Path(root).expanduser()
    check_dataset_target(root, overwrite=overwrite)
    splits = generate(config, workers=workers)
    return save_dataset(splits, root, info=dataset_info(config), overwrite=overwrite)


def load_or_generate(
    config: SynthConfig, *, cache_dir: str | os.PathLike, workers: int = 0
) -> tuple[dict[str, FERData], Path]:
    """The dataset of ``config`` from ``cache_dir/<config.stable_hash()>``, generated there once.

    Returns the memory-mapped splits and the dataset directory.

    Raises
    ------
    DataError
        When the cache entry holds a dataset of another config (edited or foreign files).
    """
    root = Path(cache_dir).expanduser() / config.stable_hash()
    if (root / "meta.json").is_file():
        info = read_meta(root).get("info", {})
        if info.get("config_hash") != config.stable_hash() or info.get("config") != config.to_dict():
            raise DataError(
                "cache entry does not hold the dataset of this config (delete the directory to "
                "regenerate it)",
                path=root / "meta.json",
            )
    else:
        generate_to(config, root, workers=workers)
    return load_dataset(root), root
