"""Configuration input: YAML files and ``key=value`` overrides, read strictly.

* YAML is read with :class:`StrictLoader`: a key given twice in one mapping is an error (PyYAML would
  keep the last silently), and ``1e-3`` is a number (YAML 1.1 reads it as a string).
* ``method=scn`` is shorthand for ``method.name=scn`` (same for ``data``); a later override of the same
  key replaces an earlier one (and the YAML file's), but two *spellings* of one key with different
  values (``method=ce method.name=scn``) are refused: which was meant cannot be known.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import StorageError, UserError
from .fileio import describe_os_error

__all__ = ["COMPONENT_SECTIONS", "StrictLoader", "check_override_conflicts", "leaf_keys", "load_yaml", "merge_tree",
           "parse_override", "safe_load", "set_dotted"]

#: Sections whose extra keys belong to a registered component (validated against its options).
COMPONENT_SECTIONS = {"method": "name", "data": "name"}


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (where PyYAML keeps the last), and
    reading ``1e-3`` as a number."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *base' merges are YAML's own overriding
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    where = f"on line {line}" if seen[key] == line else f"on lines {seen[key]} and {line}"
                    raise DuplicateKeyError(f"key '{key}' is given twice ({where})")
                seen[key] = line
            except TypeError:  # an unhashable key: PyYAML reports it itself
                continue
        return super().construct_mapping(node, deep=deep)


class DuplicateKeyError(yaml.YAMLError):
    pass


# YAML 1.1 (PyYAML) reads 1e-3 and 1E5 as strings (it wants 1.0e-3); YAML 1.2 and users read numbers.
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` that refuses duplicate keys (:class:`StrictLoader`)."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader


def parse_override(item: str) -> tuple[str, Any]:
    """``"train.lr=0.01"`` -> ``("train.lr", 0.01)`` (the value parsed as YAML)."""
    if "=" not in item:
        raise UserError(f"expected key=value, got '{item}'")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise UserError(f"empty key in '{item}'")
    try:
        value = safe_load(raw) if raw.strip() else None
    except DuplicateKeyError as exc:
        raise UserError(f"'{item}': {exc}") from None
    except yaml.YAMLError:
        value = raw
    return key, value


def leaf_keys(key: str, value: Any) -> dict[str, Any]:
    """The dotted keys an override sets: ``method=scn`` sets ``method.name``; a mapping sets each entry."""
    parts = key.split(".")
    if len(parts) == 1 and parts[0] in COMPONENT_SECTIONS and not isinstance(value, Mapping):
        return {f"{key}.{COMPONENT_SECTIONS[key]}": value}
    if isinstance(value, Mapping) and value and key != "model.options":
        out: dict[str, Any] = {}
        for sub_key, sub_value in value.items():
            out.update(leaf_keys(f"{key}.{sub_key}", sub_value))
        return out
    return {key: value}


def check_override_conflicts(overrides: list[str]) -> None:
    """Refuse two spellings of one key set to different values (``method=ce method.name=scn``,
    ``train={lr: 0.1} train.lr=0.2``): which one was meant cannot be known. The same key written the
    same way twice is a plain override: the later one wins, as over the YAML file."""
    seen: dict[str, tuple[Any, str, tuple]] = {}
    for item in overrides:
        key, value = parse_override(item)
        for leaf, leaf_value in leaf_keys(key, value).items():
            spelling = (key, isinstance(value, Mapping))
            if leaf in seen and seen[leaf][2] != spelling and seen[leaf][0] != leaf_value:
                raise UserError(f"'{seen[leaf][1]}' and '{item}' both set {leaf}, to different values; give it once")
            seen[leaf] = (leaf_value, item, spelling)


def set_dotted(tree: dict, key: str, value: Any) -> None:
    """Set ``tree["a"]["b"] = value`` for key ``"a.b"``; ``method=x`` means ``method.name=x``."""
    parts = key.split(".")
    if len(parts) == 1 and parts[0] in COMPONENT_SECTIONS and not isinstance(value, Mapping):
        parts = [parts[0], COMPONENT_SECTIONS[parts[0]]]
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UserError(f"'{key}': '{part}' is a value, not a section")
        node = child
    if isinstance(value, Mapping) and isinstance(node.get(parts[-1]), dict):
        for sub_key, sub_value in value.items():
            set_dotted(node, f"{parts[-1]}.{sub_key}", sub_value)
    else:
        node[parts[-1]] = value


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        raise UserError(f"config file: expected a YAML file, got a directory: {path}")
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise StorageError(describe_os_error(exc, path, action="read")) from None
    try:
        tree = safe_load(text) or {}
    except DuplicateKeyError as exc:
        raise UserError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: invalid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(tree, dict):
        raise UserError(f"{path}: expected a mapping at the top level")
    return tree


def merge_tree(base: dict, update: Mapping) -> dict:
    """Merge ``update`` into ``base`` with the same rules as ``key=value`` overrides."""
    for key, value in update.items():
        set_dotted(base, key, value)
    return base
