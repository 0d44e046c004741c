"""``noisyfer prepare``: a user's raw photos -> detected, aligned face crops in noisyfer's dataset format.

Input layouts (``raw``):

- a folder with one folder per class (``raw/happy/*.jpg``, ``raw/Sad/...``): split into train and test
  by ``test_fraction``, stratified by class and seeded;
- a folder with ``train/`` and ``test/`` split folders, each with class folders: the split is kept;
- a CSV file ``path,label`` (or ``path,label,valence,arousal``), paths relative to the CSV's folder:
  split by ``test_fraction``.

Class folders and labels are parsed by the ``folder`` and ``csv`` dataset readers' own code (the
usual spellings of the expressions, or class indices in noisyfer's order). Every photo is detected;
one face is kept per photo and aligned (:func:`noisyfer.faces.align_faces`). What happened to each
photo goes to ``OUT/prepare_log.jsonl`` (one JSON line per photo: faces found, action, box, score,
landmarks): photos without a face and with several faces are listed there with what was done; nothing
is left out silently.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.format import FERData, check_dataset_target, read_meta, save_dataset
from ..data.readers.csvlist import read_list
from ..data.readers.folders import list_class_folders
from ..data.readers.orders import basic_classes
from ..data.readers.report import ReadReport
from ..data.readers.textfiles import drop_duplicates
from ..errors import DataError, UserError
from .align import ALIGN_TEMPLATES, align_face
from .detectors import create_detector
from .face import Face
from .images import read_image

LOG_FILE = "prepare_log.jsonl"
MULTIPLE = ("largest", "skip")
NO_FACE = ("skip", "error")
#: Photos read and detected together.
CHUNK = 16


@dataclass
class PrepareResult:
    """What :func:`prepare` did: the dataset written, the log, and the counts of each outcome."""

    out: Path
    log: Path
    photos: int
    kept: dict[str, int]
    counts: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        """One line: photos in, faces kept per split, and every other outcome that occurred."""
        c = self.counts
        split_text = ", ".join(f"{n} {s}" for s, n in self.kept.items())
        outcomes = [(c["several faces, largest kept"], "with several faces: largest kept"),
                    (c["no face"], "without a face: left out"),
                    (c["several faces, left out"], "with several faces: left out"),
                    (c["unreadable"], "unreadable: skipped"), (c["listing"], "bad listing entries: skipped"),
                    (c["ignored"], "non-image files: ignored")]
        text = "".join(f"; {n} {what}" for n, what in outcomes if n)
        return (f"prepared {self.out}: {sum(self.kept.values())} faces ({split_text}) from {self.photos} photos"
                f"{text}; log: {self.log}")


class _Report(ReadReport):
    """The readers' report, with the hint of this command's option in its errors."""

    def bad(self, file, line, reason, *, item=None) -> None:
        if self.on_bad == "error":
            raise DataError(reason + "; --on-bad skip leaves such items out (listed in the log)", path=file, line=line)
        super().bad(file, line, reason, item=item)


def _listing(raw: Path, order: list[str], report: ReadReport) -> tuple[list[tuple], Path, bool]:
    """Rows ``(split, rel path, label, list file, line, values)``, the folder paths are relative to, and
    whether the split is given by the layout."""
    if raw.is_file():
        rows: list = []
        read_list(raw, "all", order, report, rows)
        keep = drop_duplicates([r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows], path=raw,
                               report=report)
        return [rows[i] for i in keep], raw.parent, False
    if not raw.is_dir():
        raise UserError(f"{raw}: not found (expected a folder of class folders, or a CSV file path,label)")
    split_dirs = {"train": "train", "test": "test"} if (raw / "train").is_dir() and (raw / "test").is_dir() \
        else {"all": "."}
    manifest = list_class_folders(raw, split_dirs, order, report)
    rows = [(s, p[2:] if p.startswith("./") else p, label, f, line, {})
            for s, p, label, f, line in zip(manifest.splits, manifest.paths, manifest.labels, manifest.files,
                                            manifest.lines)]
    return rows, raw, "all" not in split_dirs


def _split(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Split names per row: in each class, ``round(fraction * n)`` photos drawn at random go to test."""
    rng = np.random.default_rng(seed)
    split = np.full(len(labels), "train", dtype=object)
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        split[rng.permutation(rows)[:int(round(fraction * len(rows)))]] = "test"
    return split


def _check_out(out: Path, raw: Path, *, force: bool) -> None:
    if out.resolve() == raw.resolve() or raw.resolve() in out.resolve().parents:
        raise UserError(f"--out {out}: write the dataset outside the raw photos ({raw})")
    check_dataset_target(out, overwrite=force, flag="--force")  # before any photo is read


def prepare(raw: str | os.PathLike, out: str | os.PathLike, *, detector: str = "mtcnn", size: int = 112,
            template: str = "rafdb", multiple: str = "largest", no_face: str = "skip",
            test_fraction: float | None = None, seed: int = 0, on_bad: str = "error", classes: int = 7,
            device: str = "auto", detector_options: dict | None = None, progress: bool = True,
            force: bool = False) -> PrepareResult:
    """Detect, align and crop a user's photos into a noisyfer dataset directory.

    Parameters
    ----------
    raw
        A folder of class folders, a folder with ``train/`` and ``test/`` class-folder trees, or a CSV
        file ``path,label[,valence,arousal]`` (see the module docstring).
    out
        Dataset directory to write: new or empty, or (with ``force``) a noisyfer dataset to replace;
        any other non-empty folder is refused.
    detector
        ``mtcnn``, ``haar`` or ``none`` (the photos are already face crops).
    size
        Side of the aligned crops in pixels.
    template
        Alignment template (:data:`noisyfer.faces.ALIGN_TEMPLATES`).
    multiple
        Photos with several faces: ``largest`` keeps the largest face, ``skip`` leaves the photo out.
    no_face
        Photos without a face: ``skip`` leaves them out (logged), ``error`` stops with the file named.
    test_fraction
        Share of each class drawn for the test split (default 0.2); not allowed when ``raw`` has
        ``train/`` and ``test/`` folders.
    seed
        Seed of the train/test draw.
    on_bad
        Unreadable photos and bad listing entries: ``error`` stops naming them, ``skip`` logs them.
    classes
        7 basic expressions, or 8 with contempt: the classes of the dataset.
    device
        Device of the detector.
    detector_options
        Keyword options of the detector (e.g. ``{"min_face_size": 40}``).
    progress
        Show a progress bar (on a terminal).

    Returns
    -------
    PrepareResult
    """
    raw, out = Path(raw).expanduser(), Path(out).expanduser()
    _check_options(multiple=multiple, no_face=no_face, on_bad=on_bad, template=template, size=size, classes=classes)
    order = list(basic_classes(classes))
    report = _Report("prepare", on_bad)
    rows, base, split_given = _listing(raw, order, report)
    if split_given and test_fraction is not None:
        raise UserError(f"{raw} has train/ and test/ folders, which give the split; leave out --test-fraction")
    fraction = 0.2 if test_fraction is None else float(test_fraction)
    if not split_given and not 0 < fraction < 1:
        raise UserError(f"--test-fraction must lie strictly between 0 and 1, got {test_fraction}")
    _check_out(out, raw if raw.is_dir() else raw.parent, force=force)
    det = create_detector(detector, device=device, **(detector_options or {}))

    log: list[dict] = [{"path": b.item, "file": b.file, "line": b.line, "action": "skipped: bad listing entry",
                        "reason": b.reason} for b in report.skipped]
    log += [{"path": p.removeprefix("./"), "action": "ignored: not an image file"} for p in report.ignored]
    counts = Counter({"listing": len(report.skipped), "ignored": len(report.ignored)})
    policy = {"size": size, "template": template, "multiple": multiple, "no_face": no_face, "on_bad": on_bad}
    kept = _detect_and_align(rows, base, det, order, split_given, policy, log, counts, progress=progress)
    if not kept:
        raise DataError(f"no face kept from {len(rows)} photos (see the counts: {dict(counts)})", path=raw)
    labels = np.array([k.row[2] for k in kept], dtype=np.int64)
    split = np.array([k.row[0] for k in kept], dtype=object) if split_given else _split(labels, fraction, seed)
    for k, name in zip(kept, split):
        k.log["split"] = str(name)
    splits = _build_splits(kept, labels, split, order, raw=raw, classes=classes)
    info = {"source": "noisyfer prepare", "raw": str(raw), "detector": det.name,
            "detector_options": dict(detector_options or {}), "size": size, "template": template,
            "multiple": multiple, "no_face": no_face, "test_fraction": None if split_given else fraction,
            "seed": seed, "counts": dict(counts), "log": LOG_FILE}
    save_dataset(splits, out, info=info, overwrite=force)
    log_path = out / LOG_FILE
    log_path.write_text("".join(json.dumps(e) + "\n" for e in log), encoding="utf-8")
    return PrepareResult(out=out, log=log_path, photos=len(rows) + counts["listing"],
                         kept={n: len(s) for n, s in splits.items()}, counts=counts)


def _check_options(*, multiple: str, no_face: str, on_bad: str, template: str, size: int, classes: int) -> None:
    if multiple not in MULTIPLE:
        raise UserError(f"--multiple must be one of {', '.join(MULTIPLE)}, got '{multiple}'")
    if no_face not in NO_FACE:
        raise UserError(f"--no-face must be one of {', '.join(NO_FACE)}, got '{no_face}'")
    if on_bad not in ("error", "skip"):
        raise UserError(f"--on-bad must be error or skip, got '{on_bad}'")
    if template not in ALIGN_TEMPLATES:
        raise UserError(f"--template must be one of {', '.join(ALIGN_TEMPLATES)}, got '{template}'")
    if not 16 <= size <= 512:
        raise UserError(f"--size must be 16..512 pixels, got {size}")
    if classes not in (7, 8):
        raise UserError(f"--classes must be 7 or 8, got {classes}")


@dataclass
class _Kept:
    row: tuple
    crop: np.ndarray
    face: Face
    num_faces: int
    log: dict


def _detect_and_align(rows: list[tuple], base: Path, det, order: list[str], split_given: bool, policy: dict,
                      log: list[dict], counts: Counter, *, progress: bool) -> list[_Kept]:
    """Read, detect and align every listed photo (``CHUNK`` at a time), logging each outcome."""
    from tqdm import tqdm

    kept: list[_Kept] = []
    bar = tqdm(total=len(rows), desc="prepare", unit="photo", disable=None if progress else True)
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        images, readable = [], []
        for row in chunk:
            split, rel, label = row[:3]
            try:
                images.append(read_image(base / rel))
                readable.append(row)
            except UserError as exc:
                if policy["on_bad"] == "error":
                    raise UserError(f"{exc}; --on-bad skip leaves unreadable photos out (listed in the log)") from None
                counts["unreadable"] += 1
                log.append({"path": rel, "split": split if split_given else None, "label": order[label],
                            "action": "skipped: unreadable", "reason": str(exc)})
        for image, row, faces in zip(images, readable, det.detect(images) if images else []):
            split, rel, label = row[:3]
            entry = {"path": rel, "split": split if split_given else None, "label": order[label],
                     "faces": len(faces), "image_size": [image.shape[1], image.shape[0]]}
            if not faces:
                if policy["no_face"] == "error":
                    raise UserError(f"{base / rel}: no face found by detector '{det.name}' "
                                    f"(--no-face skip leaves such photos out, listed in {LOG_FILE})")
                counts["no face"] += 1
                log.append({**entry, "action": "left out: no face"})
            elif len(faces) > 1 and policy["multiple"] == "skip":
                counts["several faces, left out"] += 1
                log.append({**entry, "action": f"left out: {len(faces)} faces",
                            "detections": [f.to_dict() for f in faces]})
            else:
                action = "kept" if len(faces) == 1 else f"kept the largest of {len(faces)} faces"
                counts["kept" if len(faces) == 1 else "several faces, largest kept"] += 1
                log.append({**entry, "action": action, **faces[0].to_dict()})
                crop = align_face(image, faces[0], size=policy["size"], template=policy["template"])
                kept.append(_Kept(row=row, crop=crop, face=faces[0], num_faces=len(faces), log=log[-1]))
        bar.update(len(chunk))
    bar.close()
    return kept


def _build_splits(kept: list[_Kept], labels: np.ndarray, split: np.ndarray, order: list[str], *, raw: Path,
                  classes: int) -> dict[str, FERData]:
    """The train and test splits of the kept faces, with their provenance columns."""
    columns = {
        "path": np.array([k.row[1] for k in kept], dtype=str),
        "face_box": np.stack([k.face.box for k in kept]).astype(np.float32),
        "face_score": np.array([k.face.score for k in kept], dtype=np.float32),
        "num_faces": np.array([k.num_faces for k in kept], dtype=np.int64),
    }
    if all(k.face.landmarks is not None for k in kept):
        columns["landmarks"] = np.stack([k.face.landmarks for k in kept]).astype(np.float32)
    for name in ("valence", "arousal"):
        if all(name in k.row[5] for k in kept):
            columns[name] = np.array([k.row[5][name] for k in kept], dtype=np.float32)
    images = np.stack([k.crop for k in kept])
    splits = {}
    for name in ("train", "test"):
        idx = np.flatnonzero(split == name)
        if len(idx) == 0:
            raise DataError(f"the {name} split is empty after face detection ({len(kept)} faces kept); "
                            f"add photos or change --test-fraction", path=raw)
        splits[name] = FERData(images=images[idx], labels=labels[idx], class_names=tuple(order),
                               columns={k: v[idx] for k, v in columns.items()})
    missing = [order[c] for c in np.flatnonzero(np.bincount(splits["train"].labels, minlength=len(order)) == 0)]
    if missing:
        raise DataError(f"class(es) {', '.join(missing)} have no training face; every class of --classes {classes} "
                        f"needs photos (a folder per class)", path=raw)
    return splits
