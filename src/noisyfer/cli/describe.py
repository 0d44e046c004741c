"""Options of a method, dataset, backbone or config section as text: ``noisyfer list NAME``, ``train --help``.

The descriptions come from the ``Attributes`` section of each options dataclass's numpydoc docstring,
so what ``noisyfer list`` prints is what the code documents. Importing this module does not import torch
(``train --help`` uses it); looking up a method or dataset does (its module defines the options).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from typing import Any

from ..config import CHOICES, SECTIONS, TOP_LEVEL, TOP_TYPES, _fields, _type_name
from ..papers import name_papers

__all__ = ["attribute_docs", "config_sections_help", "describe_options", "option_rows"]

#: Documentation of the top-level keys (they have no dataclass).
TOP_LEVEL_DOCS = {
    "seed": "Seed of the weights, batch order and augmentation (the noise has its own noise.seed).",
    "device": "auto (CUDA when available), cpu, cuda or cuda:N.",
    "out": "Folder the run directory is created in (also --out).",
    "name": "Run directory name (default: method_data_noise_rate_seed).",
    "resume": "A run directory to continue from its last checkpoint.",
}


def attribute_docs(cls: type) -> dict[str, str]:
    """``{field: first paragraph of its description}`` from the numpydoc ``Attributes`` sections of
    ``cls`` and its bases (a ``a, b`` entry documents both)."""
    docs: dict[str, str] = {}
    for klass in reversed(inspect.getmro(cls)):
        text = inspect.cleandoc(klass.__dict__.get("__doc__") or "")
        match = re.search(r"^Attributes\n-+\n(.*?)(?:\n\S[^\n]*\n-+\n|\Z)", text, re.S | re.M)
        if not match:
            continue
        name, lines = None, []
        for line in match.group(1).splitlines() + [""]:
            if line and not line.startswith(" "):
                if name:
                    for key in name:
                        docs[key] = " ".join(lines).strip()
                name, lines = [n.strip() for n in line.split(":")[0].split(",")], []
            elif line.strip():
                lines.append(line.strip())
        if name:
            for key in name:
                docs[key] = " ".join(lines).strip()
    return docs


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return "(required)"


def _kind(tp: Any) -> str:
    if typing.get_origin(tp) in (list, tuple):
        return "a list"
    if typing.get_origin(tp) is dict:
        return "a mapping"
    return _type_name(tp)


def option_rows(cls: type | None, *, section: str = "") -> list[tuple[str, str, str, str]]:
    """``(name, type, default, description)`` of each field of options dataclass ``cls`` (a config
    section's fixed choices, :data:`noisyfer.config.CHOICES`, are named as the type)."""
    if cls is None:
        return []
    types = _fields(cls)
    docs = attribute_docs(cls)
    rows = []
    for f in dataclasses.fields(cls):
        choices = CHOICES.get(f"{section}.{f.name}")
        kind = "one of " + ", ".join(choices) if choices else _kind(types[f.name])
        doc = name_papers(docs.get(f.name, "")).replace("``", "")
        rows.append((f.name, kind, repr(_default(f)), doc))
    return rows


def describe_options(cls: type | None, *, prefix: str, indent: int = 2) -> str:
    """Lines ``prefix.name  type, default  description`` for every option of ``cls``."""
    rows = option_rows(cls, section=prefix.rstrip(".").strip())
    pad = " " * indent
    if not rows:
        return f"{pad}(no options)"
    width = max(len(prefix) + len(r[0]) for r in rows) + 1
    out = []
    for name, kind, default, doc in rows:
        out.append(f"{pad}{prefix + name:<{width}} {kind}, default {default}")
        if doc:
            out.append(f"{pad}{'':<{width}}   {doc}")
    return "\n".join(out)


def top_level_rows() -> list[tuple[str, str, str, str]]:
    return [(k, _type_name(TOP_TYPES[k]), repr(v), TOP_LEVEL_DOCS[k]) for k, v in TOP_LEVEL.items()]


def config_sections_help() -> str:
    """The epilog of ``noisyfer train --help``: the sections, their keys and where each is documented."""
    lines = ["configuration (key=value on the command line; the same nested keys in a YAML file):",
             f"  top level   {', '.join(TOP_LEVEL)}",
             "  method      method=NAME, then the method's options: noisyfer list METHOD"]
    for section, cls in SECTIONS.items():
        keys = ", ".join(f.name for f in dataclasses.fields(cls))
        extra = "; and the dataset's options: noisyfer list DATASET" if section == "data" else ""
        lines.append(f"  {section:<11} {keys}{extra}")
    lines += ["",
              "every key with its type, default and meaning: noisyfer list SECTION (e.g. noisyfer list train),",
              "noisyfer list METHOD, noisyfer list DATASET; see also README.md, section 'Configuration'.",
              "examples:",
              "  noisyfer train ce_sim                         # a shipped config by name (noisyfer list --configs)",
              "  noisyfer train method=scn data=rafdb data.root=DATA/RAF-DB noise.kind=symmetric noise.rate=0.3",
              "  noisyfer train configs/ce_sim.yaml train.epochs=2 --out /tmp/runs --print-config"]
    return "\n".join(lines)


def is_section(name: str) -> bool:
    return name in SECTIONS or name in ("top", "top-level")


def describe_section(name: str) -> str:
    if name in SECTIONS:
        return describe_options(SECTIONS[name], prefix=f"{name}.")
    rows = top_level_rows()
    width = max(len(r[0]) for r in rows) + 1
    return "\n".join(f"  {n:<{width}} {t}, default {d}\n  {'':<{width}}   {doc}" for n, t, d, doc in rows)


