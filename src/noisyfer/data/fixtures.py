"""Small dataset trees in the real benchmarks' layouts, with faces from the FER simulator.

Each ``write_*`` function writes a tree that the matching reader reads exactly as it reads the real
dataset (JPEG folders and label files for RAF-DB, pixel strings for FER2013, vote tables for FERPlus,
the AffectNet CSVs with face boxes, class folders for SFEW, ...) and returns a :class:`FixtureTree`
saying what a correct reader must return. Tests use them; so can users, to try a configuration
before pointing it at their copy of a dataset::

    from noisyfer.data.fixtures import write_rafdb
    tree = write_rafdb("/tmp/raf_fixture", num_train=70, num_test=28)
    # noisyfer train data=rafdb data.root=/tmp/raf_fixture ...

The label codes written here are spelled out per dataset in this module (from the datasets'
documentation), independently of the readers' tables, so a test comparing the two checks both.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from .classes import BASIC7, BASIC8
from .format import FERData

# Label codes as the datasets document them.
RAFDB_CODES = {"surprise": 1, "fear": 2, "disgust": 3, "happiness": 4, "sadness": 5, "anger": 6, "neutral": 7}
FER2013_CODES = {"anger": 0, "disgust": 1, "fear": 2, "happiness": 3, "sadness": 4, "surprise": 5, "neutral": 6}
AFFECTNET_CODES = {"neutral": 0, "happiness": 1, "sadness": 2, "surprise": 3, "fear": 4, "disgust": 5,
                   "anger": 6, "contempt": 7}
FERPLUS_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
                   "unknown", "NF")
SFEW_FOLDERS = {"anger": "Angry", "disgust": "Disgust", "fear": "Fear", "happiness": "Happy",
                "neutral": "Neutral", "sadness": "Sad", "surprise": "Surprise"}
AFFECTNET_HEADER = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
                    "expression", "valence", "arousal")


@dataclass
class FixtureTree:
    """A written fixture and what a reader must make of it.

    Attributes
    ----------
    root
        The dataset root to pass as ``data.root``.
    splits
        Per split the expected samples in the reader's output order: ``images`` as generated (before
        JPEG loss or resizing), ``labels`` indexing ``class_names`` (the simulator's order, so compare
        class *names*), a ``path`` column where the reader keeps one, and per-dataset columns.
    rows
        Raw written table of the formats whose rows do not map one-to-one to samples (FERPlus
        votes, AffectNet expression codes), keyed by name.
    """

    root: Path
    splits: dict[str, FERData]
    rows: dict[str, np.ndarray] = field(default_factory=dict)

    def names(self, split: str) -> list[str]:
        """Expected class name of every sample of ``split``."""
        data = self.splits[split]
        return [data.class_names[i] for i in data.labels]


def simulated_faces(count: int, *, size: int, classes: int = 7, seed: int = 0, workers: int = 1,
                    groups: Sequence[int] = ()) -> FERData:
    """``count`` simulated faces with classes balanced in every consecutive group of sizes ``groups``.

    Classes are interleaved before each group is shuffled, so any group of at least ``classes`` faces
    holds every class (tiny fixtures never lack a class in a split).
    """
    from .synthetic import SynthConfig, generate

    config = SynthConfig(num_train=max(count, 1), num_test=0, image_size=size, num_classes=classes, seed=seed,
                         class_counts="balanced")
    faces = generate(config, workers=workers)["train"].subset(np.arange(count))
    labels = faces.labels
    rank = np.empty(count, dtype=np.int64)
    for c in range(classes):
        members = np.flatnonzero(labels == c)
        rank[members] = np.arange(members.size)
    order = np.lexsort((labels, rank))
    rng = np.random.default_rng(seed)
    start = 0
    for size_of_group in list(groups) + [count - sum(groups)]:
        rng.shuffle(order[start:start + size_of_group])
        start += size_of_group
    return faces.subset(order)


def _save_image(array: np.ndarray, path: Path, *, quality: int = 95) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        image.save(path, quality=quality)
    else:
        image.save(path)


def _expected(faces: FERData, rows: np.ndarray, **columns: np.ndarray) -> FERData:
    sub = faces.subset(rows)
    return FERData(images=sub.images, labels=sub.labels, class_names=sub.class_names,
                   columns={k: np.asarray(v) for k, v in columns.items()})


def write_rafdb(root: str | os.PathLike, *, num_train: int = 21, num_test: int = 14, size: int = 100,
                seed: int = 0, layout: str = "aligned", quality: int = 95, workers: int = 1) -> FixtureTree:
    """RAF-DB basic: ``EmoLabel/list_patition_label.txt`` and ``Image/aligned`` (or ``Image/original``).

    Train names are ``train_00001.jpg``..., test names ``test_0001.jpg``... (as in RAF-DB); the label
    file lists the train lines, then the test lines.
    """
    root = Path(root)
    faces = simulated_faces(num_train + num_test, size=size, seed=seed, workers=workers, groups=(num_train,))
    lines, paths = [], []
    for i in range(len(faces)):
        split, number = ("train", i + 1) if i < num_train else ("test", i - num_train + 1)
        name = f"train_{number:05d}.jpg" if split == "train" else f"test_{number:04d}.jpg"
        lines.append(f"{name} {RAFDB_CODES[faces.class_names[faces.labels[i]]]}")
        if layout == "aligned":
            rel = f"Image/aligned/{name[:-4]}_aligned.jpg"
        elif layout == "original":
            rel = f"Image/original/{name}"
        else:
            raise ValueError(f"layout must be aligned or original, got {layout!r}")
        _save_image(faces.images[i], root / rel, quality=quality)
        paths.append(rel)
    (root / "EmoLabel").mkdir(parents=True, exist_ok=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    train, test = np.arange(num_train), np.arange(num_train, len(faces))
    return FixtureTree(root, {"train": _expected(faces, train, path=np.asarray(paths)[train]),
                              "test": _expected(faces, test, path=np.asarray(paths)[test])},
                       rows={"lines": np.asarray(lines)})


def _gray(images: np.ndarray) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in images]) if len(images) else \
        np.zeros((0,) + images.shape[1:3], dtype=np.uint8)


def _pixel_string(gray: np.ndarray) -> str:
    return " ".join(map(str, gray.reshape(-1).tolist()))


def write_fer2013(root: str | os.PathLike, *, num_train: int = 14, num_public: int = 7, num_private: int = 7,
                  seed: int = 0, file: str = "fer2013.csv", workers: int = 1) -> FixtureTree:
    """``fer2013.csv`` (``emotion,pixels,Usage``, 48x48 gray) with Training, PublicTest, PrivateTest rows.

    Expected splits: ``train`` (Training), ``val`` (PublicTest), ``test`` (PrivateTest); images are
    the gray faces replicated to RGB, with a ``source_row`` column (0-based data row).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    counts = {"Training": num_train, "PublicTest": num_public, "PrivateTest": num_private}
    faces = simulated_faces(sum(counts.values()), size=48, seed=seed, workers=workers,
                            groups=(num_train, num_public))
    gray = _gray(faces.images)
    usage = np.repeat(list(counts), list(counts.values()))
    with open(root / file, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["emotion", "pixels", "Usage"])
        for i in range(len(faces)):
            writer.writerow([FER2013_CODES[faces.class_names[faces.labels[i]]], _pixel_string(gray[i]), usage[i]])
    faces.images = np.repeat(gray[..., None], 3, axis=3)
    splits = {}
    for split, name in (("train", "Training"), ("val", "PublicTest"), ("test", "PrivateTest")):
        rows = np.flatnonzero(usage == name)
        splits[split] = _expected(faces, rows, source_row=rows)
    return FixtureTree(root, splits, rows={"usage": usage, "gray": gray})


def votes_from_faces(faces: FERData) -> np.ndarray:
    """Ten FERPlus-style votes per face (columns :data:`FERPLUS_COLUMNS`) from the simulator's crowd."""
    votes = np.zeros((len(faces), len(FERPLUS_COLUMNS)), dtype=np.int64)
    crowd = faces.columns["votes"]
    for c, name in enumerate(faces.class_names):
        votes[:, FERPLUS_COLUMNS.index(name)] = crowd[:, c]
    short = 10 - votes.sum(1)
    votes[:, FERPLUS_COLUMNS.index("unknown")] += np.clip(short, 0, None)
    return votes


def write_ferplus(root: str | os.PathLike, *, votes: np.ndarray | None = None, usage: Sequence[str] | None = None,
                  image_names: Sequence[str] | None = None, seed: int = 0, workers: int = 1) -> FixtureTree:
    """``fer2013.csv`` plus ``fer2013new.csv`` (``Usage,Image name,`` ten vote columns).

    Parameters
    ----------
    votes
        int (N, 10) votes in :data:`FERPLUS_COLUMNS` order; default: 24 faces (8 classes) voted by the
        simulator's crowd. Tests pass hand-written votes to know the majority labels.
    usage
        Usage per row (default: 2/3 Training, then PublicTest and PrivateTest alternating).
    image_names
        ``Image name`` per row; ``""`` marks a row FERPlus removed (default ``fer0000000.png``...).

    ``rows`` of the returned tree holds ``votes``, ``usage``, ``names``, ``gray`` (the 48x48 faces) and
    ``fer2013_names`` (the class written to fer2013.csv: the face's class, disgust for contempt).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    n = 24 if votes is None else len(votes)
    faces = simulated_faces(n, size=48, classes=8, seed=seed, workers=workers, groups=((2 * n) // 3,))
    if votes is None:
        votes = votes_from_faces(faces)
    votes = np.asarray(votes, dtype=np.int64)
    if usage is None:
        train = (2 * n) // 3
        usage = ["Training"] * train + [("PublicTest", "PrivateTest")[i % 2] for i in range(n - train)]
    names = list(image_names) if image_names is not None else [f"fer{i:07d}.png" for i in range(n)]
    gray = _gray(faces.images)
    fer_names = [faces.class_names[c] for c in faces.labels]
    fer_names = ["disgust" if name == "contempt" else name for name in fer_names]  # FER2013 has no contempt
    with open(root / "fer2013.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["emotion", "pixels", "Usage"])
        for i in range(n):
            writer.writerow([FER2013_CODES[fer_names[i]], _pixel_string(gray[i]), usage[i]])
    with open(root / "fer2013new.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["Usage", "Image name", *FERPLUS_COLUMNS])
        for i in range(n):
            writer.writerow([usage[i], names[i], *votes[i].tolist()])
    return FixtureTree(root, {}, rows={"votes": votes, "usage": np.asarray(usage), "names": np.asarray(names),
                                       "gray": gray, "fer2013_names": np.asarray(fer_names)})


def write_affectnet(root: str | os.PathLike, *, num_train: int = 16, num_val: int = 8, face: int = 64,
                    seed: int = 0, no_class_rows: Sequence[int] = (8, 9, 10), workers: int = 1) -> FixtureTree:
    """AffectNet's ``Manually_Annotated_file_lists/{training,validation}.csv`` and
    ``Manually_Annotated_Images/<dir>/<name>.jpg``.

    Each face (``face`` px, 8 classes) is pasted at an offset into a larger gray canvas whose face box
    is written in the CSV; ``no_class_rows`` adds, to each CSV, one row per code given (8 none,
    9 uncertain, 10 no-face; valence and arousal -2, as AffectNet writes them). Expected ``train`` and
    ``test`` (validation) splits hold the faces, ``valence`` / ``arousal`` as written, and ``path``.
    """
    root = Path(root)
    extra = len(no_class_rows)
    total = num_train + num_val + 2 * extra
    faces = simulated_faces(total, size=face, classes=8, seed=seed, workers=workers,
                            groups=(num_train, extra, num_val))
    rng = np.random.default_rng(seed)
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir(parents=True, exist_ok=True)
    splits, codes = {}, []
    start = 0
    for split, file, count in (("train", "training.csv", num_train), ("test", "validation.csv", num_val)):
        rows = list(range(start, start + count + extra))
        start += count + extra
        kept, paths, va = [], [], []
        with open(lists / file, "w", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(AFFECTNET_HEADER)
            for k, i in enumerate(rows):
                width, height = face + int(rng.integers(8, 48)), face + int(rng.integers(8, 48))
                x, y = int(rng.integers(0, width - face + 1)), int(rng.integers(0, height - face + 1))
                canvas = np.full((height, width, 3), 90, dtype=np.uint8)
                canvas[y:y + face, x:x + face] = faces.images[i]
                rel = f"{k % 3 + 1}/{seed:02d}{split}{k:05d}a7c3.jpg"
                _save_image(canvas, root / "Manually_Annotated_Images" / rel, quality=95)
                landmarks = ";".join(f"{v:.2f}" for v in rng.uniform(0, face, 136))
                if k < count:
                    code = AFFECTNET_CODES[faces.class_names[faces.labels[i]]]
                    valence, arousal = (round(float(v), 6) for v in (faces.columns["valence"][i], faces.columns["arousal"][i]))
                    kept.append(i)
                    paths.append(rel)
                    va.append((valence, arousal))
                else:
                    code, valence, arousal = no_class_rows[k - count], -2, -2
                codes.append(code)
                writer.writerow([rel, x, y, face, face, landmarks, code, valence, arousal])
        va_array = np.asarray(va, dtype=np.float32).reshape(-1, 2)
        splits[split] = _expected(faces, np.asarray(kept, dtype=np.int64), path=np.asarray(paths),
                                  valence=va_array[:, 0], arousal=va_array[:, 1])
    return FixtureTree(root, splits, rows={"codes": np.asarray(codes)})


def _class_folders(root: Path, split_dirs: dict[str, str], counts: dict[str, int], folder_names: dict[str, str],
                   *, size: int, seed: int, suffix: str, workers: int) -> FixtureTree:
    total = sum(counts.values())
    faces = simulated_faces(total, size=size, seed=seed, workers=workers, groups=list(counts.values())[:-1])
    splits = {}
    start = 0
    for split, directory in split_dirs.items():
        rows = np.arange(start, start + counts[split])
        start += counts[split]
        paths = []
        for i in rows:
            name = faces.class_names[faces.labels[i]]
            rel = f"{directory}/{folder_names[name]}/{split}_{i:04d}{suffix}"
            _save_image(faces.images[i], root / rel)
            paths.append(rel)
        order = np.argsort(paths, kind="stable")  # readers list folders in sorted path order
        splits[split] = _expected(faces, rows[order], path=np.asarray(paths)[order])
    return FixtureTree(root, splits)


def write_sfew(root: str | os.PathLike, *, num_train: int = 14, num_val: int = 7, size: int = 64, seed: int = 0,
               workers: int = 1) -> FixtureTree:
    """SFEW 2.0 faces: ``Train/<Angry|Disgust|...>/*.png`` and ``Val/...`` (``val`` is the test split)."""
    return _class_folders(Path(root), {"train": "Train", "test": "Val"}, {"train": num_train, "test": num_val},
                          SFEW_FOLDERS, size=size, seed=seed, suffix=".png", workers=workers)


def write_folder(root: str | os.PathLike, *, num_train: int = 14, num_test: int = 7, size: int = 64, seed: int = 0,
                 suffix: str = ".png", workers: int = 1) -> FixtureTree:
    """A generic ``root/<train|test>/<class name>/*`` tree with noisyfer's class names as folders."""
    return _class_folders(Path(root), {"train": "train", "test": "test"}, {"train": num_train, "test": num_test},
                          {n: n for n in BASIC8}, size=size, seed=seed, suffix=suffix, workers=workers)


def write_csv_list(root: str | os.PathLike, *, num_train: int = 14, num_test: int = 7, size: int = 64, seed: int = 0,
                   labels_as: str = "name", workers: int = 1) -> FixtureTree:
    """``train.csv`` / ``test.csv`` with ``path,label,valence,arousal`` and the images under ``images/``.

    ``labels_as``: ``name`` writes class names, ``index`` writes the index in noisyfer's 7-class order.
    """
    root = Path(root)
    faces = simulated_faces(num_train + num_test, size=size, seed=seed, workers=workers, groups=(num_train,))
    root.mkdir(parents=True, exist_ok=True)
    splits = {}
    for split, rows in (("train", np.arange(num_train)), ("test", np.arange(num_train, num_train + num_test))):
        paths = []
        with open(root / f"{split}.csv", "w", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["path", "label", "valence", "arousal"])
            for i in rows:
                rel = f"images/{split}/{i:04d}.png"
                _save_image(faces.images[i], root / rel)
                name = faces.class_names[faces.labels[i]]
                label = name if labels_as == "name" else BASIC7.index(name)
                writer.writerow([rel, label, round(float(faces.columns["valence"][i]), 6),
                                 round(float(faces.columns["arousal"][i]), 6)])
                paths.append(rel)
        splits[split] = _expected(faces, rows, path=np.asarray(paths),
                                  valence=np.round(faces.columns["valence"][rows].astype(np.float64), 6).astype(np.float32),
                                  arousal=np.round(faces.columns["arousal"][rows].astype(np.float64), 6).astype(np.float32))
    return FixtureTree(root, splits)
