"""What a sweep runs: a base configuration, fixed overrides and a grid of values, one run per point.

A sweep file (YAML)::

    base: configs/ce_sim.yaml          # optional run config every point starts from
    set:                               # fixed overrides (key: value, as after `noisyfer train`)
      data.num_train: 2000
      train.epochs: 4
    per_method:                        # overrides for the points of one method only
      scn: {method.relabel_epoch: 2}
    grid:                              # every combination is one run
      method: [ce, scn]
      noise.rate: [0.2, 0.4]
      seed: [0, 1]
    replicates: [seed, noise.seed]     # axes averaged over in tables (default)
    out: sweeps/demo                   # sweep directory (or --out)

or the same on the command line: ``noisyfer sweep key=a,b,c key=value scn:method.relabel_epoch=2 ...``
(a value with commas is a grid axis, a bracketed value such as ``train.milestones=[10,20]`` is one
value, ``METHOD:key=value`` is a per-method override). The special axis
``config`` takes run config files, e.g. ``config=configs/ce_sim.yaml,configs/scn_sim.yaml`` runs
each method with its own recipe. Paths are relative to the current directory.

Every registered method: the axis value ``method: all`` (``method=all``) stands for every method in
the registry when the points are made, so a new method joins the sweep without editing it; a
``base`` containing ``{method}`` (``configs/{method}_sim.yaml``) is each point's own method's recipe::

    base: configs/{method}_sim.yaml
    grid:
      method: all
      noise.rate: [0.2, 0.4]

A point's configuration is built in layers: ``base``, its ``config`` file, ``set``, ``per_method`` of its
method, then the grid values. When the method named by a later layer differs from a file layer's, that file's method
options are dropped (they belong to another method). Every point is validated before anything runs.
Each point has a deterministic name made of its grid values (``method-ce__noise.rate-0.2__seed-0``),
which is its run directory's name: a sweep re-run finds its runs again. A file's axis narrowed on the
command line, to several values or to one (``method=scn``), stays an axis, so its runs have the names
they have in the full sweep; a key that is no axis of the file, given one value, is a fixed setting.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config import leaf_keys, load_yaml, parse_override, resolve_config, set_dotted
from ..errors import UserError

__all__ = ["DEFAULT_REPLICATES", "GridPoint", "SweepSpec", "parse_shard", "split_grid_value"]

DEFAULT_REPLICATES = ("seed", "noise.seed")
SPEC_KEYS = ("base", "set", "per_method", "grid", "replicates", "out")
METHOD_KEYS = ("method", "method.name")
#: Grid value of a method axis that stands for every registered method.
ALL_METHODS = "all"
#: Keys a point may differ in from an existing run directory of the same name.
RUN_LOCAL_KEYS = ("out", "name", "resume", "device", "train.epochs")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def split_grid_value(raw: str) -> list[Any]:
    """``"0.2,0.4"`` -> ``[0.2, 0.4]``; ``"ce"`` -> ``["ce"]``; ``"[10,20]"`` -> ``[[10, 20]]``."""
    text = raw.strip()
    if text.startswith(("[", "{")) or "," not in text:
        return [parse_override(f"v={raw}")[1]]
    return [parse_override(f"v={part}")[1] for part in text.split(",")]


def _value_text(key: str, value: Any) -> str:
    if key == "config":
        return Path(str(value)).stem
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _slug(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("_") or "x"


@dataclass
class GridPoint:
    """One run of a sweep: its position in the grid, its grid values and its run name."""

    index: int
    values: dict[str, Any]
    name: str
    #: The name the run had before a file's axis narrowed to one value on the command line stayed in run
    #: names (that axis left out); ``None`` when nothing was narrowed to one value.
    former_name: str | None = None


@dataclass
class SweepSpec:
    """A sweep: ``base`` config file, ``fixed`` overrides, ``grid`` axes (see the module docstring)."""

    base: str | None = None
    fixed: dict[str, Any] = field(default_factory=dict)
    per_method: dict[str, dict[str, Any]] = field(default_factory=dict)
    grid: dict[str, list] = field(default_factory=dict)
    replicates: tuple[str, ...] = DEFAULT_REPLICATES
    out: str | None = None
    source: str | None = None
    #: The file's axes narrowed to one value on the command line (they keep their place in run names).
    narrowed_to_one: set[str] = field(default_factory=set)

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, mapping: dict, *, source: str = "sweep") -> "SweepSpec":
        unknown = [k for k in mapping if k not in SPEC_KEYS]
        if unknown:
            raise UserError(f"{source}: unknown sweep key(s) {', '.join(map(str, unknown))}; "
                            f"known: {', '.join(SPEC_KEYS)}")
        fixed = mapping.get("set") or {}
        grid = mapping.get("grid") or {}
        if not isinstance(fixed, dict):
            raise UserError(f"{source}: 'set' must map keys to values, got {fixed!r}")
        if not isinstance(grid, dict):
            raise UserError(f"{source}: 'grid' must map keys to lists of values, got {grid!r}")
        per_method = mapping.get("per_method") or {}
        if not isinstance(per_method, dict) or not all(isinstance(v, dict) for v in per_method.values()):
            raise UserError(f"{source}: 'per_method' must map method names to key: value overrides")
        spec = cls(base=mapping.get("base"), fixed={str(k): v for k, v in fixed.items()}, out=mapping.get("out"),
                   source=source, per_method={str(m): {str(k): v for k, v in o.items()} for m, o in per_method.items()})
        for key, values in grid.items():
            spec.add_axis(str(key), values if isinstance(values, list) else [values], where=f"{source}: grid.{key}")
        replicates = mapping.get("replicates", list(DEFAULT_REPLICATES))
        if not isinstance(replicates, list) or not all(isinstance(r, str) for r in replicates):
            raise UserError(f"{source}: 'replicates' must be a list of keys, got {replicates!r}")
        spec.replicates = tuple(replicates)
        try:
            spec._check_spellings()
        except UserError as exc:
            raise UserError(f"{source}: {exc}") from None
        return spec

    @classmethod
    def from_args(cls, items: list[str]) -> "SweepSpec":
        """``[SWEEP.yaml | CONFIG.yaml] key=value key=a,b,c ...`` (see the module docstring)."""
        spec = cls()
        for i, item in enumerate(items):
            if "=" not in item:
                if i != 0:
                    raise UserError(f"expected key=value, got '{item}' (only the first argument may be a YAML file)")
                tree = load_yaml(item)
                if tree and set(tree) <= set(SPEC_KEYS) and ("grid" in tree or "set" in tree or "base" in tree):
                    spec = cls.from_mapping(tree, source=item)
                elif set(tree) & {"grid", "set", "base", "replicates"}:
                    raise UserError(f"{item}: mixes sweep keys (base, set, grid) with run config keys")
                else:
                    spec.base, spec.source = item, item
                continue
            key, _ = parse_override(item)
            if ":" in key:
                method, _, sub_key = key.partition(":")
                if not method or not sub_key:
                    raise UserError(f"'{item}': a per-method override reads METHOD:key=value")
                spec.per_method.setdefault(method, {})[sub_key] = parse_override(item)[1]
                continue
            spec.fixed.pop(key, None)
            values = split_grid_value(item.split("=", 1)[1])
            if len(values) > 1 or key == "config" or key in spec.grid or (key in METHOD_KEYS and values == [ALL_METHODS]):
                if len(values) == 1 and key in spec.grid:
                    spec.narrowed_to_one.add(key)
                spec.add_axis(key, values, where=item)  # a file's axis keeps its place: same run names
            else:
                spec.grid.pop(key, None)
                spec.fixed[key] = values[0]
        spec._check_spellings()
        return spec

    def _check_spellings(self) -> None:
        """Refuse two spellings of one key (``method=ce method.name=scn,ce``): which was meant is unknown."""
        seen: dict[str, str] = {}
        for key, value in [*self.fixed.items(), *((k, v[0]) for k, v in self.grid.items())]:
            for leaf in leaf_keys(key, value):
                if seen.setdefault(leaf, key) != key:
                    raise UserError(f"'{seen[leaf]}' and '{key}' both set {leaf}; give it once")

    def add_axis(self, key: str, values: list, *, where: str) -> None:
        if not values:
            raise UserError(f"{where}: a grid axis needs at least one value")
        texts = [_slug(_value_text(key, v)) for v in values]
        if len(set(texts)) != len(texts):
            raise UserError(f"{where}: values {values} give the same run-name part twice ({texts})")
        self.grid[key] = list(values)

    def to_mapping(self) -> dict:
        return {"base": self.base, "set": dict(self.fixed),
                "per_method": {m: dict(o) for m, o in self.per_method.items()},
                "grid": {k: list(v) for k, v in self.grid.items()}, "replicates": list(self.replicates),
                "out": self.out}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_mapping(), sort_keys=False)

    # -- the grid --------------------------------------------------------------------------
    def axis_values(self, key: str) -> list:
        """The values of grid axis ``key``, a method axis's ``all`` replaced by every registered method."""
        values = self.grid[key]
        if key not in METHOD_KEYS or ALL_METHODS not in values:
            return list(values)
        from .. import methods  # noqa: F401  (importing it registers every method)
        from ..registry import METHODS

        expanded = [name for v in values for name in (METHODS.names() if v == ALL_METHODS else [v])]
        return list(dict.fromkeys(expanded))

    def points(self) -> list[GridPoint]:
        """Every combination of the grid values, in axis order (the last axis varies fastest)."""
        keys = list(self.grid)
        points = []
        for index, combo in enumerate(itertools.product(*(self.axis_values(k) for k in keys))):
            values = dict(zip(keys, combo))
            parts = {k: f"{_slug(k)}-{_slug(_value_text(k, v))}" for k, v in values.items()}
            name = "__".join(parts.values()) or "run"
            former = None
            if self.narrowed_to_one:
                former = "__".join(part for k, part in parts.items() if k not in self.narrowed_to_one) or "run"
            points.append(GridPoint(index=index, values=values, name=name, former_name=former))
        return points

    def point_tree(self, point: GridPoint, *, runs_dir: str | Path) -> dict:
        """The configuration mapping of ``point`` (run into ``runs_dir/<point.name>``)."""
        method = tree_method(self, point)
        files = [load_yaml(base_path(self.base, method))] if self.base else []
        if "config" in point.values:
            files.append(load_yaml(str(point.values["config"])))
        tree: dict = {}
        for layer in files:
            layer = dict(layer)
            own = layer.get("method")
            own_name = own.get("name", "ce") if isinstance(own, dict) else own
            if own is not None and own_name != method:
                layer["method"] = {"name": method}  # the file's options belong to another method
            for key, value in layer.items():
                set_dotted(tree, key, value)
        overrides = [*self.fixed.items(), *self.per_method.get(method, {}).items(),
                     *((k, v) for k, v in point.values.items() if k != "config")]
        for key, value in overrides:
            set_dotted(tree, key, value)
        tree.update({"out": str(runs_dir), "name": point.name, "resume": None})
        return tree

    def resolved(self, *, runs_dir: str | Path, shard: tuple[int, int] = (1, 1),
                 refused: list[tuple[GridPoint, str]] | None = None) -> list[tuple[GridPoint, dict]]:
        """``(point, resolved config mapping)`` of this shard's points; any invalid point is an error, or, with
        ``refused`` (a list), is appended to it as ``(point, message)`` and left out (``--dry-run`` lists them all)."""
        points = self.points()
        methods = {str(tree_method(self, p)) for p in points}
        # Overrides for a registered method no point runs are a recipe kept for a wider sweep (a shipped
        # file narrowed with method=a,b); a name no method is registered under is a mistake.
        from .. import methods as _  # noqa: F401  (importing it registers every method)
        from ..registry import METHODS

        for name in sorted(set(self.per_method) - methods):
            if name not in METHODS:
                METHODS.get(name)  # raises: unknown method, with the available names and a close match
        out = []
        for point in points:
            if point.index % shard[1] != shard[0] - 1:
                continue
            try:
                cfg = resolve_config(self.point_tree(point, runs_dir=runs_dir))
            except UserError as exc:
                if refused is None:
                    raise UserError(f"sweep point {point.name}: {exc}") from None
                refused.append((point, str(exc)))
                continue
            out.append((point, cfg.to_dict()))
        return out


def tree_method(spec: SweepSpec, point: GridPoint) -> str:
    """The method a point trains (its grid value, else ``set``, else its config file's, else ``ce``)."""
    for source in (point.values, spec.fixed):
        for key in ("method.name", "method"):
            if key in source and not isinstance(source[key], dict):
                return str(source[key])
    if spec.base and "{method}" in spec.base and "config" not in point.values:
        raise UserError(f"base '{spec.base}' is named by the method, but the sweep names no method "
                        f"(set method: in grid or set)")
    for path in (point.values.get("config"), spec.base):
        if path and "{method}" not in str(path):
            section = load_yaml(str(path)).get("method")
            if isinstance(section, dict) and "name" in section:
                return str(section["name"])
            if isinstance(section, str):
                return section
    return "ce"


def base_path(base: str, method: str) -> str:
    """``base`` with ``{method}`` replaced by the point's method (``configs/{method}_sim.yaml``)."""
    return str(base).replace("{method}", method)


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"2/3"`` -> ``(2, 3)``: the second of three disjoint shards of the grid (points i-1, i-1+n, ...)."""
    if not text:
        return (1, 1)
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise UserError(f"--shard: expected I/N with 1 <= I <= N (e.g. 1/3), got '{text}'")
    return int(match.group(1)), int(match.group(2))


def differing_keys(a: dict, b: dict, *, ignore: tuple[str, ...] = RUN_LOCAL_KEYS, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config mappings (``ignore`` left out)."""
    keys = []
    for key in sorted(set(a) | set(b)):
        dotted = f"{prefix}{key}"
        if dotted in ignore:
            continue
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            keys += differing_keys(va, vb, ignore=ignore, prefix=dotted + ".")
        elif _normal(va) != _normal(vb):
            keys.append(dotted)
    return keys


def _normal(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_normal(v) for v in value]
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
