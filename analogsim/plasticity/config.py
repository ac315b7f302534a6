"""The plasticity settings: which rules in which mix, the mechanisms, the stability
mechanisms, the adapters' place and shape, and the device update model.

Three sources, later ones win: the defaults, the mapping file's ``plastic`` table
(``plastic = { targets = ["attention.v", "mlp.down"], rank = 16, alpha = 32 }``), the
plasticity config file (``--plasticity-config FILE``) and the command line
(``--plasticity RULE``, ``--plasticity-every N``). A config file (every key optional):

.. code-block:: toml

    rate = 1e-3                  # base learning rate eta
    every = 1                    # one update every N tokens (inputs)
    update = "device"            # device update model: device (the card's), ideal, pcm, reram,
                                 # ecram, gokmen_vlasov, or a table { preset = "pcm", dw_min = 0.005 }
    targets = ["mlp.down"]       # also rank, alpha (as in the mapping's plastic table)

    [rules]                      # the mix: weight per rule (the hybrid is several)
    oja = 0.5
    bcm = 0.5
    [rule_params.bcm]
    tau = 0.01

    [mechanisms]
    agp = { strength = 0.5 }                              # attention-guided plasticity
    tsm = { momentum = 0.05, threshold = 0.0, floor = 0.1 }   # temporal surprise gate
    ch = { burn_in = 16, rate = 0.01 }                    # contextual homeostasis

    [stability]
    ewc = { lam = 0.1, anchor_after = 16, momentum = 0.05 }
    spectral_cap = 2.0           # largest singular value of s A B (power iteration)
    clip = 0.1                   # Frobenius norm of one update of A (and of B)
    adaptive_rate = { ref = 1.0, beta = 0.9 }
    decay = 0.001                # toward the origin, per update

``false`` turns a mechanism off. ``--plasticity hybrid`` is the design's hybrid:
every built-in rule mixed (:data:`HYBRID_RULES`) with the three mechanisms on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analogsim.config import check_number, load_toml
from analogsim.devices.update import UpdateModel, update_model
from analogsim.errors import ConfigError
from analogsim.plasticity.rules import get_rule

__all__ = [
    "DEFAULT_LM_TARGETS",
    "HYBRID_RULES",
    "PlasticityConfig",
    "check_plastic_table",
    "plasticity_config",
]

DEFAULT_LM_TARGETS = ("attention.v", "mlp.down")
"""Where adapters go when nothing says (the issue's example); classifiers: ``("mlp",)``."""

HYBRID_RULES = {"oja": 0.4, "hebbian": 0.1, "bcm": 0.2, "predictive": 0.2, "energy": 0.1}
"""The hybrid mix (weights are ours: the public design names the rules, not the weights)."""

_MECH = {
    "agp": {"strength": 0.5},
    "tsm": {"momentum": 0.05, "threshold": 0.0, "floor": 0.1},
    "ch": {"burn_in": 16, "rate": 0.01},
}
_STAB_TABLES = {
    "ewc": {"lam": 0.1, "anchor_after": 16, "momentum": 0.05},
    "adaptive_rate": {"ref": 1.0, "beta": 0.9},
}
_STAB_DEFAULT: dict[str, Any] = {
    "ewc": dict(_STAB_TABLES["ewc"]),
    "spectral_cap": 2.0,
    "clip": 0.1,
    "adaptive_rate": dict(_STAB_TABLES["adaptive_rate"]),
    "decay": 0.001,
}
PLASTIC_KEYS = ("targets", "rank", "alpha", "update")
FILE_KEYS = (
    "rate",
    "every",
    "seed",
    *PLASTIC_KEYS,
    "rules",
    "rule_params",
    "mechanisms",
    "stability",
)


@dataclass(frozen=True)
class PlasticityConfig:
    """Resolved plasticity settings (module docstring: meanings and defaults)."""

    rules: dict[str, float]
    rule_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    rate: float = 1e-3
    every: int = 1
    targets: tuple[str, ...] | None = None
    rank: int = 16
    alpha: float = 32.0
    update: Any = "device"
    mechanisms: dict[str, dict[str, Any]] = field(default_factory=dict)
    stability: dict[str, Any] = field(default_factory=lambda: dict(_STAB_DEFAULT))
    seed: int | None = None
    name: str = ""

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def update_model(self, technology: str | None) -> UpdateModel:
        return update_model(self.update, technology=technology)

    def summary(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["targets"] = list(self.targets) if self.targets is not None else None
        if isinstance(self.update, UpdateModel):
            d["update"] = self.update.summary()
        return d


def check_plastic_table(table: Any, *, file: Any = None, key: str = "plastic") -> dict[str, Any]:
    """Check a mapping's ``plastic`` table (or the same keys of a config file); return
    the keys it sets, checked."""
    if not isinstance(table, dict):
        raise ConfigError(
            "must be a table",
            file=file,
            key=key,
            value=table,
            allowed='{ targets = ["attention.v", "mlp.down"], rank = 16, alpha = 32 }',
        )
    out: dict[str, Any] = {}
    for k, v in table.items():
        if k not in PLASTIC_KEYS:
            raise ConfigError(
                f"unknown key '{k}'", file=file, key=f"{key}.{k}", allowed=", ".join(PLASTIC_KEYS)
            )
        if k == "targets":
            if not isinstance(v, list) or not v or not all(isinstance(t, str) and t for t in v):
                raise ConfigError(
                    "must be a non-empty list of roles, sub-roles or module-name regexes",
                    file=file,
                    key=f"{key}.targets",
                    value=v,
                    allowed='e.g. ["attention.v", "mlp.down"] (see docs/plasticity.md)',
                )
            out[k] = tuple(v)
        elif k == "rank":
            out[k] = check_number(v, key=f"{key}.rank", lo=1, hi=4096, integer=True, file=file)
        elif k == "alpha":
            out[k] = check_number(
                v, key=f"{key}.alpha", lo=0, hi=1e6, lo_inclusive=False, file=file
            )
        else:
            update_model(v, file=file)
            out[k] = v
    return out


def _table(value: Any, defaults: dict[str, Any], *, file: Any, key: str) -> dict[str, Any] | None:
    """A mechanism's table: ``false`` -> None, ``true`` -> defaults, a table -> checked."""
    if value is False:
        return None
    if value is True:
        return dict(defaults)
    if not isinstance(value, dict):
        raise ConfigError(
            "must be true, false or a table",
            file=file,
            key=key,
            value=value,
            allowed="{ " + ", ".join(f"{k} = {v}" for k, v in defaults.items()) + " }",
        )
    out = dict(defaults)
    for k, v in value.items():
        if k not in defaults:
            raise ConfigError(
                f"unknown key '{k}'", file=file, key=f"{key}.{k}", allowed=", ".join(defaults)
            )
        integer = isinstance(defaults[k], int)
        out[k] = check_number(v, key=f"{key}.{k}", lo=0, hi=1e9, integer=integer, file=file)
    return out


def _rules(value: Any, *, file: Any) -> dict[str, float]:
    if not isinstance(value, dict) or not value:
        raise ConfigError(
            "must be a table of rule = weight",
            file=file,
            key="rules",
            value=value,
            allowed="e.g. { oja = 0.5, bcm = 0.5 }",
        )
    out = {}
    for k, v in value.items():
        get_rule(k, file=file, key=f"rules.{k}")
        out[k] = float(check_number(v, key=f"rules.{k}", lo=-1e6, hi=1e6, file=file))
    return out


def plasticity_config(
    rule: str | None = None,
    file: str | Path | dict[str, Any] | None = None,
    *,
    plastic: dict[str, Any] | None = None,
    every: int | None = None,
    mapping_file: Any = None,
) -> PlasticityConfig | None:
    """Resolve the plasticity settings (None when no rule and no file: plasticity off).

    Args:
        rule: ``--plasticity``: a registered rule or ``hybrid``.
        file: ``--plasticity-config``: a TOML path or its parsed table.
        plastic: the mapping's ``plastic`` table.
        every: ``--plasticity-every``.
        mapping_file: the mapping file (for error messages about ``plastic``).
    """
    if rule is None and file is None:
        if every is not None:
            raise ConfigError(
                "--plasticity-every needs plasticity",
                key="plasticity_every",
                value=every,
                allowed="add --plasticity RULE or --plasticity-config FILE",
            )
        return None
    cfg: dict[str, Any] = {}
    if plastic:
        cfg.update(check_plastic_table(plastic, file=mapping_file))
    data: dict[str, Any] = {}
    where: Any = None
    if isinstance(file, dict):
        data, where = file, "<plasticity config>"
    elif file is not None:
        where = Path(file)
        data = load_toml(where, missing="plasticity config file not found")
    for k in data:
        if k not in FILE_KEYS:
            raise ConfigError(f"unknown key '{k}'", file=where, key=k, allowed=", ".join(FILE_KEYS))
    cfg.update(check_plastic_table({k: data[k] for k in PLASTIC_KEYS if k in data}, file=where))
    rules: dict[str, float] | None = _rules(data["rules"], file=where) if "rules" in data else None
    mechanisms: dict[str, dict[str, Any]] = {}
    name = "config"
    if rule is not None:
        if rule == "hybrid":
            rules = dict(HYBRID_RULES)
            mechanisms = {k: dict(v) for k, v in _MECH.items()}
        else:
            get_rule(rule)
            rules = {rule: 1.0}
        name = rule
    if rules is None:
        raise ConfigError(
            "no rule: give --plasticity RULE or a [rules] table",
            file=where,
            key="rules",
            allowed="e.g. [rules] oja = 1.0",
        )
    params: dict[str, dict[str, Any]] = {}
    raw_params = data.get("rule_params", {})
    if not isinstance(raw_params, dict):
        raise ConfigError("must be a table of tables", file=where, key="rule_params")
    for r in rules:
        spec = get_rule(r)
        params[r] = _table(
            raw_params.get(r, True), spec.defaults, file=where, key=f"rule_params.{r}"
        ) or dict(spec.defaults)
    for r in raw_params:
        if r not in rules:
            raise ConfigError(
                "parameters for a rule that is not used",
                file=where,
                key=f"rule_params.{r}",
                allowed=", ".join(rules),
            )
    raw_mech = data.get("mechanisms", {})
    if not isinstance(raw_mech, dict):
        raise ConfigError("must be a table", file=where, key="mechanisms")
    for k, v in raw_mech.items():
        if k not in _MECH:
            raise ConfigError(
                f"unknown mechanism '{k}'",
                file=where,
                key=f"mechanisms.{k}",
                allowed=", ".join(_MECH),
            )
        t = _table(v, _MECH[k], file=where, key=f"mechanisms.{k}")
        if t is None:
            mechanisms.pop(k, None)
        else:
            mechanisms[k] = t
    stability = dict(_STAB_DEFAULT)
    raw_stab = data.get("stability", {})
    if not isinstance(raw_stab, dict):
        raise ConfigError("must be a table", file=where, key="stability")
    for k, v in raw_stab.items():
        if k not in _STAB_DEFAULT:
            raise ConfigError(
                f"unknown key '{k}'",
                file=where,
                key=f"stability.{k}",
                allowed=", ".join(_STAB_DEFAULT),
            )
        if k in _STAB_TABLES:
            stability[k] = _table(v, _STAB_TABLES[k], file=where, key=f"stability.{k}")
        elif v is False:
            stability[k] = None
        else:
            stability[k] = check_number(
                v, key=f"stability.{k}", lo=0, hi=1e9, lo_inclusive=k == "decay", file=where
            )
    rate = check_number(data.get("rate", 1e-3), key="rate", lo=0, hi=1e6, file=where)
    ev = every if every is not None else data.get("every", 1)
    ev = check_number(
        ev,
        key="every" if every is None else "plasticity_every",
        lo=1,
        hi=1e9,
        integer=True,
        file=where if every is None else None,
    )
    seed = data.get("seed")
    if seed is not None:
        seed = check_number(seed, key="seed", lo=0, hi=2**62, integer=True, file=where)
    return PlasticityConfig(
        rules=rules,
        rule_params=params,
        rate=float(rate),
        every=int(ev),
        targets=cfg.get("targets"),
        rank=int(cfg.get("rank", 16)),
        alpha=float(cfg.get("alpha", 32.0)),
        update=cfg.get("update", "device"),
        mechanisms=mechanisms,
        stability=stability,
        seed=seed,
        name=name,
    )
