"""Mapping files: placement rules that put each weight layer on analog tiles or digital.

A mapping is a TOML file (``mappings/*.toml``):

.. code-block:: toml

    name = "digital_attention_analog_mlp"
    description = "attention digital (int8), MLP analog on PCM"

    [default]                 # the global rule
    placement = "analog"
    device = "pcm"
    tile = { rows = 512, adc_bits = 8 }

    [[rule]]
    role = "attention"        # select by role ...
    placement = "digital"
    quantizer = { bits = 8, per_channel = true }

    [[rule]]
    block = [0, -1]           # ... by transformer block (negative counts from the end) ...
    placement = "digital"

    [[rule]]
    match = 'transformer\\.h\\.(0|5)'   # ... by regex (full match on a module or a parent) ...
    placement = "digital"

    [[rule]]
    name = "lm_head"          # ... or by exact module name (or a parent's name)
    placement = "digital"

Priority (lowest to highest): ``[default]`` < ``role`` < ``block`` < ``match`` < ``name``.
A block is the index of the first numbered module list on a layer's path (GPT-2
``transformer.h.3``, BERT ``encoder.layer.3``, LLaMA ``model.layers.3``); ``-1`` is the
last block of the model. A rule
that names a parent module applies to every layer below it; a rule on a deeper module
beats one on its parent at the same level; among equals the later rule wins. Rules
cascade: each one overrides only the keys it sets, so a rule may change just
``tile.adc_bits``. Tile settings start from :class:`~analogsim.tiles.config.TileConfig`
defaults. Precedence of sources: command line > file > defaults.

A rule with ``optional = true`` may match nothing (for mappings shared by models with
and without, say, embeddings). Every layer's resolution records the rule that decided its placement and all rules
that touched it, so ``analogsim map`` can say *why* a layer went where it went. A rule
that matches no layer is an error; a plan with nothing analog is a warning.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from torch import nn

from analogsim.config import load_toml
from analogsim.devices import DeviceModel, load_device
from analogsim.devices.card import card_dict
from analogsim.devices.quant import Quantizer
from analogsim.errors import ConfigError
from analogsim.mapping.roles import ROLES, model_roles, tie_groups
from analogsim.paths import data_dir
from analogsim.tiles.config import TILE_KEYS, TileConfig, validate_tile

PLACEMENTS = ("analog", "digital")
SELECTORS = ("role", "block", "match", "name")
RULE_KEYS = (
    *SELECTORS,
    "placement",
    "device",
    "device_overrides",
    "tile",
    "quantizer",
    "optional",
    "note",
)
DEFAULT_KEYS = ("placement", "device", "device_overrides", "tile", "quantizer")
TOP_KEYS = ("name", "description", "default", "rule", "tied_weights", "plastic")
PLASTIC_KEYS = ("targets", "rank", "alpha", "update")
"""Keys of the optional ``plastic`` table (plastic LoRA adapters: docs/plasticity.md;
their values are checked by :mod:`analogsim.plasticity.config`)."""
TIED = ("follow-head", "follow-embedding", "independent")
_LEVEL = {"default": 0, "role": 1, "block": 2, "match": 3, "name": 4}


@dataclass(frozen=True)
class Rule:
    """One rule of a mapping file; ``selector`` is ``default``, ``role``, ``match`` or ``name``."""

    selector: str
    pattern: Any
    settings: dict[str, Any]
    index: int
    optional: bool = False

    def describe(self) -> str:
        if self.selector == "default":
            return "default"
        pattern = list(self.pattern) if isinstance(self.pattern, tuple) else self.pattern
        return f"rule[{self.index}] {self.selector}={pattern!r}"


@dataclass
class Mapping:
    """A validated mapping file."""

    name: str
    description: str
    default: Rule
    rules: list[Rule]
    path: Path | None = None
    tied_weights: str = "independent"
    raw: dict[str, Any] = field(default_factory=dict)
    device_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def with_device(self, device: str | None) -> Mapping:
        """A copy whose analog placements use ``device`` (command line > file)."""
        if device is None:
            return self
        default = Rule("default", "", {**self.default.settings, "device": device}, -1)
        rules = [
            Rule(r.selector, r.pattern, {**r.settings, "device": device}, r.index, r.optional)
            if "device" in r.settings
            else r
            for r in self.rules
        ]
        return replace(self, default=default, rules=rules)

    def with_device_overrides(self, device: str, overrides: dict[str, Any]) -> Mapping:
        """A copy where every layer on ``device`` uses the card with ``overrides``
        (``{"drift.scale": 2}``); validated when the plan is resolved."""
        merged = {k: dict(v) for k, v in self.device_overrides.items()}
        merged.setdefault(device, {}).update(overrides)
        return replace(self, device_overrides=merged)

    def with_tile(self, **tile: Any) -> Mapping:
        """A copy whose every rule's tile settings include ``tile`` (command line > file)."""
        if not tile:
            return self
        d = dict(self.default.settings)
        d["tile"] = {**d.get("tile", {}), **tile}
        rules = []
        for r in self.rules:
            s = dict(r.settings)
            if "tile" in s:
                s["tile"] = {**s["tile"], **tile}
            rules.append(Rule(r.selector, r.pattern, s, r.index, r.optional))
        return replace(self, default=Rule("default", "", d, -1), rules=rules)


@dataclass(frozen=True)
class LayerPlan:
    """Where one weight layer goes and why."""

    name: str
    role: str
    kind: str
    placement: str
    device: DeviceModel | None
    tile: TileConfig | None
    quantizer: Quantizer | None
    rule: str
    rules: tuple[str, ...]
    in_features: int
    out_features: int
    params: int
    macs_per_token: int
    tied_to: str | None = None

    def tiles(self) -> int:
        if self.placement != "analog" or self.tile is None or self.kind == "embedding":
            return 0
        return math.ceil(self.in_features / self.tile.rows) * math.ceil(
            self.out_features / self.tile.cols
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "kind": self.kind,
            "placement": self.placement,
            "device": self.device.name if self.device is not None else None,
            "tiles": self.tiles(),
            "params": self.params,
            "macs_per_token": self.macs_per_token,
            "in_features": self.in_features,
            "out_features": self.out_features,
            "quantizer": None
            if self.quantizer is None
            else {"bits": self.quantizer.bits, "per_channel": self.quantizer.per_channel},
            "tile": None if self.tile is None else _tile_dict(self.tile),
            "rule": self.rule,
            "rules": list(self.rules),
            "tied_to": self.tied_to,
        }


def _tile_dict(t: TileConfig) -> dict[str, Any]:
    return {k: getattr(t, k) for k in TILE_KEYS}


@dataclass
class PlacementPlan:
    """The resolved placement of every weight layer of a model."""

    mapping: Mapping
    family: str
    layers: list[LayerPlan]
    unclassified: list[str] = field(default_factory=list)

    def by_name(self) -> dict[str, LayerPlan]:
        return {p.name: p for p in self.layers}

    def tied_groups(self) -> list[list[str]]:
        """Layers that share one weight, owner first (:func:`~analogsim.mapping.roles.tie_groups`)."""
        return tie_groups(self.layers)

    def counted_params(self) -> dict[str, tuple[int, int]]:
        """``(params, analog_params)`` each layer adds to the totals, a shared weight once.

        A tied weight (``in_features * out_features`` values) is charged to the first
        layer of its group, and it is analog when any layer of the group is analog (the
        weights are then held on analog tiles; under ``tied_weights = "independent"`` a
        digital copy may exist too). The other layers of a group add only their own bias.
        """
        out: dict[str, tuple[int, int]] = {}
        analog_group: dict[str, bool] = {}
        followers: set[str] = set()
        by_name = self.by_name()
        for group in self.tied_groups():
            followers.update(group[1:])
            analog_group[group[0]] = any(by_name[n].placement == "analog" for n in group)
        for p in self.layers:
            weight = min(p.in_features * p.out_features, p.params)
            bias = p.params - weight
            analog = p.placement == "analog"
            if p.name in followers:
                out[p.name] = (bias, bias if analog else 0)
            else:
                w_analog = analog_group.get(p.name, analog)
                out[p.name] = (p.params, (weight if w_analog else 0) + (bias if analog else 0))
        return out

    def totals(self) -> dict[str, Any]:
        """Layer, parameter, MAC and tile counts; a tied weight's parameters count once
        (:meth:`counted_params`); MACs count per layer (a tied head still computes)."""
        counted = self.counted_params()
        params = sum(c[0] for c in counted.values())
        a_params = sum(c[1] for c in counted.values())
        macs = sum(p.macs_per_token for p in self.layers)
        a_macs = sum(p.macs_per_token for p in self.layers if p.placement == "analog")
        return {
            "layers": len(self.layers),
            "analog_layers": sum(p.placement == "analog" for p in self.layers),
            "params": params,
            "analog_params": a_params,
            "analog_param_share": a_params / params if params else 0.0,
            "macs_per_token": macs,
            "analog_macs_per_token": a_macs,
            "analog_mac_share": a_macs / macs if macs else 0.0,
            "tiles": sum(p.tiles() for p in self.layers),
            "tied_groups": self.tied_groups(),
        }


# ---------------------------------------------------------------------------- loading
def mapping_paths() -> dict[str, Path]:
    """Shipped mappings by name."""
    return {p.stem: p for p in sorted(data_dir("mappings").glob("*.toml"))}


def list_mappings() -> list[str]:
    return list(mapping_paths())


def load_mapping(name_or_path: str | Path | Mapping) -> Mapping:
    """A shipped mapping by name (``"all_analog"``) or a path to a TOML mapping file."""
    if isinstance(name_or_path, Mapping):
        return name_or_path
    text = str(name_or_path)
    paths = mapping_paths()
    if text in paths:
        path = paths[text]
    elif text.endswith(".toml") or Path(text).exists():
        path = Path(text)
    else:
        raise ConfigError(
            "unknown mapping",
            key="mapping",
            value=text,
            allowed="a shipped mapping (" + ", ".join(paths) + ") or a path to a .toml file",
        )
    data = load_toml(path, missing="mapping file not found")
    return mapping_from_dict(data, file=path, path=path.resolve())


def cards_of(mapping: Mapping, device: str | None = None) -> dict[str, Any]:
    """Card contents of every device a mapping can use (for manifests), by card name.

    ``device`` replaces the mapping's devices as on the command line.
    """
    names = set()
    m = mapping.with_device(device)
    for s in [m.default.settings, *[r.settings for r in m.rules]]:
        if "device" in s:
            names.add(s["device"])
    return {n: card_dict(load_device(n)) for n in sorted(names)}


def _check_settings(
    s: dict[str, Any], where: str, file: Any, allowed: tuple[str, ...]
) -> dict[str, Any]:
    for key in s:
        if key not in allowed:
            raise ConfigError(
                f"unknown key '{key}'", file=file, key=f"{where}.{key}", allowed=", ".join(allowed)
            )
    out = dict(s)
    if "placement" in s and s["placement"] not in PLACEMENTS:
        raise ConfigError(
            "invalid placement",
            file=file,
            key=f"{where}.placement",
            value=s["placement"],
            allowed=", ".join(PLACEMENTS),
        )
    if "device" in s:
        if not isinstance(s["device"], str):
            raise ConfigError(
                "must be a device name or path", file=file, key=f"{where}.device", value=s["device"]
            )
        try:
            load_device(s["device"])
        except ConfigError as exc:
            raise ConfigError(str(exc), file=file, key=f"{where}.device") from None
    if "device_overrides" in s and not isinstance(s["device_overrides"], dict):
        raise ConfigError(
            "must be a table of 'section.key' = value",
            file=file,
            key=f"{where}.device_overrides",
            value=s["device_overrides"],
        )
    if "tile" in s:
        t = s["tile"]
        if not isinstance(t, dict):
            raise ConfigError(
                "must be a table of tile settings",
                file=file,
                key=f"{where}.tile",
                value=t,
                allowed=", ".join(TILE_KEYS),
            )
        full = {k: getattr(TileConfig(), k) for k in TILE_KEYS}
        full.update(t)
        validate_tile(full, file=file, prefix=f"{where}.tile.")
    if "quantizer" in s:
        q = s["quantizer"]
        if q == "none":
            pass
        elif not isinstance(q, dict) or set(q) - {"bits", "per_channel"}:
            raise ConfigError(
                "quantizer is 'none' or { bits = k, per_channel = true|false }",
                file=file,
                key=f"{where}.quantizer",
                value=q,
            )
        else:
            try:
                Quantizer(q.get("bits", 8), bool(q.get("per_channel", False)))
            except ConfigError as exc:
                raise ConfigError(str(exc), file=file, key=f"{where}.quantizer.bits") from None
    return out


def mapping_from_dict(
    data: dict[str, Any], *, file: Any = "<dict>", path: Path | None = None
) -> Mapping:
    """Validate a parsed mapping file (roles are checked against :data:`ROLES`)."""
    for key in data:
        if key not in TOP_KEYS:
            raise ConfigError(
                f"unknown top-level key '{key}'", file=file, key=key, allowed=", ".join(TOP_KEYS)
            )
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError("missing or empty 'name'", file=file, key="name", value=name)
    default = data.get("default", {})
    if not isinstance(default, dict):
        raise ConfigError("[default] must be a table", file=file, key="default", value=default)
    dsettings = _check_settings(default, "default", file, DEFAULT_KEYS)
    dsettings.setdefault("placement", "digital")
    if dsettings["placement"] == "analog" and "device" not in dsettings:
        raise ConfigError(
            "an analog default needs a device",
            file=file,
            key="default.device",
            allowed="a device card name or path",
        )
    tied = data.get("tied_weights", "independent")
    if tied not in TIED:
        raise ConfigError(
            "invalid tied_weights",
            file=file,
            key="tied_weights",
            value=tied,
            allowed=", ".join(TIED),
        )
    plastic = data.get("plastic")
    if plastic is not None:
        if not isinstance(plastic, dict):
            raise ConfigError(
                "must be a table",
                file=file,
                key="plastic",
                value=plastic,
                allowed='{ targets = ["attention.v", "mlp.down"], rank = 16, alpha = 32 }',
            )
        for k in plastic:
            if k not in PLASTIC_KEYS:
                raise ConfigError(
                    f"unknown key '{k}'",
                    file=file,
                    key=f"plastic.{k}",
                    allowed=", ".join(PLASTIC_KEYS),
                )
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise ConfigError("rules are an array of tables [[rule]]", file=file, key="rule")
    rules = []
    for i, r in enumerate(raw_rules):
        where = f"rule[{i}]"
        if not isinstance(r, dict):
            raise ConfigError("each [[rule]] is a table", file=file, key=where, value=r)
        sel = [k for k in SELECTORS if k in r]
        if len(sel) != 1:
            raise ConfigError(
                "a rule selects with exactly one of role, block, match, name",
                file=file,
                key=where,
                value=sel or None,
                allowed="role = '...', block = [0, -1], match = 'regex' or name = 'module.name'",
            )
        selector = sel[0]
        pattern = r[selector]
        if selector == "block":
            blocks = pattern if isinstance(pattern, list) else [pattern]
            if not blocks or not all(
                isinstance(b, int) and not isinstance(b, bool) for b in blocks
            ):
                raise ConfigError(
                    "block takes an integer or a list of integers",
                    file=file,
                    key=f"{where}.block",
                    value=pattern,
                    allowed="e.g. block = 0 or block = [0, -1]",
                )
            pattern = tuple(blocks)
        elif not isinstance(pattern, str) or not pattern:
            raise ConfigError(
                "selector must be a non-empty string",
                file=file,
                key=f"{where}.{selector}",
                value=pattern,
            )
        if selector == "role" and pattern not in ROLES:
            raise ConfigError(
                "unknown role",
                file=file,
                key=f"{where}.role",
                value=pattern,
                allowed=", ".join(ROLES),
            )
        if selector == "match":
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(
                    f"invalid regular expression: {exc}",
                    file=file,
                    key=f"{where}.match",
                    value=pattern,
                ) from None
        settings = _check_settings(
            {k: v for k, v in r.items() if k != selector}, where, file, RULE_KEYS
        )
        settings.pop("note", None)
        optional = settings.pop("optional", False)
        if not isinstance(optional, bool):
            raise ConfigError(
                "must be true or false", file=file, key=f"{where}.optional", value=optional
            )
        if not settings:
            raise ConfigError(
                "rule sets nothing",
                file=file,
                key=where,
                allowed="placement, device, tile, quantizer, device_overrides",
            )
        rules.append(Rule(selector, pattern, settings, i, optional))
    return Mapping(
        name=name,
        description=str(data.get("description", "")),
        default=Rule("default", "", dsettings, -1),
        rules=rules,
        path=path,
        tied_weights=tied,
        raw=data,
    )


# ---------------------------------------------------------------------------- resolving
def _apply_ties(plans: list[LayerPlan], mapping: Mapping) -> list[LayerPlan]:
    """Apply the mapping's stated policy for tied weights (e.g. GPT-2 lm_head = wte).

    A tie whose two modules end up placed differently must be a stated decision: the
    mapping sets ``tied_weights`` (``independent``: each module has its own storage and
    placement; ``follow-embedding`` / ``follow-head``: one placement for both).
    """
    by_name = {p.name: p for p in plans}
    stated = "tied_weights" in mapping.raw
    out = []
    for p in plans:
        other = by_name.get(p.tied_to) if p.tied_to else None
        if other is None or (other.placement == p.placement and other.device == p.device):
            out.append(p)
            continue
        pair_roles = {p.role, other.role}
        if not stated:
            raise ConfigError(
                f"'{p.name}' ({p.role}, {p.placement}) shares its weights with '{other.name}' "
                f"({other.role}, {other.placement}) but the mapping does not say how tied weights "
                "are placed",
                file=mapping.path or mapping.name,
                key="tied_weights",
                allowed="tied_weights = " + " | ".join(f'"{t}"' for t in TIED),
            )
        policy = mapping.tied_weights
        follow = None
        if (
            policy == "follow-embedding" and p.role != "embedding" and "embedding" in pair_roles
        ) or (policy == "follow-head" and p.role == "embedding" and "head" in pair_roles):
            follow = other
        if follow is None:
            out.append(p)
            continue
        out.append(
            LayerPlan(
                name=p.name,
                role=p.role,
                kind=p.kind,
                placement=follow.placement,
                device=follow.device,
                tile=follow.tile,
                quantizer=follow.quantizer,
                rule=f"tied_weights={policy} (follows {follow.name})",
                rules=(*p.rules, f"tied_weights={policy}"),
                in_features=p.in_features,
                out_features=p.out_features,
                params=p.params,
                macs_per_token=p.macs_per_token,
                tied_to=p.tied_to,
            )
        )
    return out


def _ancestors(name: str) -> list[str]:
    """``a.b.c`` -> ``['a.b.c', 'a.b', 'a']`` (deepest first)."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def block_of(name: str) -> tuple[str, int] | None:
    """(container, index) of the first numbered component of a module path, e.g.
    ``transformer.h.3.mlp.c_fc -> ("transformer.h", 3)``; None if there is none."""
    parts = name.split(".")
    for i, p in enumerate(parts):
        if p.isdigit():
            return ".".join(parts[:i]), int(p)
    return None


def block_counts(names: list[str]) -> dict[str, int]:
    """Number of blocks per container among the given layer names."""
    counts: dict[str, int] = {}
    for n in names:
        b = block_of(n)
        if b is not None:
            counts[b[0]] = max(counts.get(b[0], 0), b[1] + 1)
    return counts


def matching_rules(
    name: str, role: str, rules: list[Rule], blocks: dict[str, int] | None = None
) -> list[tuple[tuple[int, int, int], Rule]]:
    """Rules that apply to layer ``name`` with their priority keys (level, depth, order).

    ``blocks`` gives the number of blocks per container (for negative block indexes).
    """
    out = []
    anc = _ancestors(name)
    blk = block_of(name)
    for r in rules:
        if r.selector == "role":
            if r.pattern == role:
                out.append(((_LEVEL["role"], 0, r.index), r))
        elif r.selector == "block":
            if blk is not None:
                n_blocks = (blocks or {}).get(blk[0], blk[1] + 1)
                wanted = {b % n_blocks if b < 0 else b for b in r.pattern}
                if blk[1] in wanted:
                    out.append(((_LEVEL["block"], 0, r.index), r))
        elif r.selector == "match":
            rx = re.compile(r.pattern)
            for depth_from_leaf, a in enumerate(anc):
                if rx.fullmatch(a):
                    out.append(((_LEVEL["match"], -depth_from_leaf, r.index), r))
                    break
        else:
            for depth_from_leaf, a in enumerate(anc):
                if r.pattern == a:
                    out.append(((_LEVEL["name"], -depth_from_leaf, r.index), r))
                    break
    out.sort(key=lambda x: x[0])
    return out


def resolve_layer(
    name: str, role: str, mapping: Mapping, blocks: dict[str, int] | None = None
) -> tuple[dict[str, Any], str, tuple[str, ...]]:
    """Cascade the default and matching rules: (settings, deciding rule, all rules applied).

    Pure: depends only on the layer's name and role, the model's block counts and the mapping.
    """
    settings = dict(mapping.default.settings)
    settings["tile"] = dict(settings.get("tile", {}))
    decided = mapping.default.describe()
    applied = [decided]
    for _, r in matching_rules(name, role, mapping.rules, blocks):
        for k, v in r.settings.items():
            if k == "tile":
                settings["tile"] = {**settings["tile"], **v}
            else:
                settings[k] = v
        applied.append(r.describe())
        if "placement" in r.settings or "device" in r.settings:
            decided = r.describe()
    return settings, decided, tuple(applied)


def resolve_plan(model: nn.Module, mapping: Mapping, *, strict: bool = True) -> PlacementPlan:
    """Place every weight layer of ``model``; errors before any work on rules that match nothing."""
    roles = model_roles(model)
    used: set[int] = set()
    plans: list[LayerPlan] = []
    device_cache: dict[tuple, DeviceModel] = {}
    blocks = block_counts([i.name for i in roles.layers])
    for info in roles.layers:
        settings, decided, applied = resolve_layer(info.name, info.role, mapping, blocks)
        for _, r in matching_rules(info.name, info.role, mapping.rules, blocks):
            used.add(r.index)
        placement = settings.get("placement", "digital")
        device = tile = quant = None
        if placement == "analog":
            dname = settings.get("device")
            if dname is None:
                raise ConfigError(
                    f"layer '{info.name}' is placed analog but no device is set",
                    file=mapping.path,
                    key="device",
                    allowed="set device in [default] or in the rule",
                )
            overrides = dict(settings.get("device_overrides") or {})
            overrides.update(mapping.device_overrides.get(dname, {}))
            # repr: override values may be tables or lists (piecewise functions), unhashable
            ck = (dname, repr(sorted(overrides.items())))
            if ck not in device_cache:
                device_cache[ck] = load_device(dname, overrides)
            device = device_cache[ck]
            tile = TileConfig(**settings.get("tile", {}))
        q = settings.get("quantizer")
        if placement == "digital" and isinstance(q, dict):
            quant = Quantizer(q.get("bits", 8), bool(q.get("per_channel", False)))
        plans.append(
            LayerPlan(
                name=info.name,
                role=info.role,
                kind=info.kind,
                placement=placement,
                device=device,
                tile=tile,
                quantizer=quant,
                rule=decided,
                rules=applied,
                in_features=info.in_features,
                out_features=info.out_features,
                params=info.params,
                macs_per_token=info.macs_per_token,
                tied_to=info.tied_to,
            )
        )
    plans = _apply_ties(plans, mapping)
    unused = [r for r in mapping.rules if r.index not in used and not r.optional]
    if unused and strict:
        r = unused[0]
        raise ConfigError(
            f"{r.describe()} matches no layer of this model",
            file=mapping.path or mapping.name,
            key=f"rule[{r.index}].{r.selector}",
            value=r.pattern,
            allowed="a role present in the model ("
            + ", ".join(sorted({i.role for i in roles.layers}))
            + ") or a block / module name / regex of it (see `analogsim map MODEL`)",
        )
    plan = PlacementPlan(
        mapping=mapping, family=roles.family, layers=plans, unclassified=list(roles.unclassified)
    )
    if not any(p.placement == "analog" for p in plans):
        warnings.warn(
            f"mapping '{mapping.name}' places no layer analog: the model runs fully digital",
            stacklevel=2,
        )
    return plan
