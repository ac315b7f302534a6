"""Device cards: TOML files in ``devices/``, validated section by section.

A card is data. Every fitted constant sits in a card section with a ``source``;
values without a published source are listed in that section's ``assumptions``.
Validation happens on load: a malformed file, an unknown or missing key, a wrong type
or a value out of physical range raises one :class:`~analogsim.errors.ConfigError`
that names the file, the key, the value and what is allowed.

This module knows the card format (tables, keys, ranges) and turns a parsed card into
validated sections (:func:`card_fields`) and back (:func:`card_dict`); the device model
built from them is :class:`analogsim.devices.model.DeviceModel` (``device_from_dict``,
``load_card``), which imports this module and never the other way round.
"""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path
from typing import Any

from analogsim.config import check_number, load_toml
from analogsim.devices.functions import Piecewise, parse_piecewise
from analogsim.devices.physics import TEMPERATURE_RANGE_K, max_monotone_slope_eV
from analogsim.devices.sections import (
    AccumulatedNoise,
    Conductance,
    Drift,
    Faults,
    Programming,
    Temperature,
)
from analogsim.errors import ConfigError

SECTIONS = ("conductance", "programming", "drift", "read_noise", "temperature", "faults")
TOP_KEYS = ("name", "technology", "description", "source", *SECTIONS)
TECHNOLOGIES = ("pcm", "rram", "ideal", "other")

_NUM = "number"
_PW = "piecewise"
_STR = "string"
_LIST = "list of numbers"
_INT = "integer"

# key: (kind, required, low, high, low_inclusive, high_inclusive)
_SPEC: dict[str, dict[str, tuple]] = {
    "conductance": {
        "g_min_uS": (_NUM, True, 0.0, math.inf, True, False),
        "g_max_uS": (_NUM, True, 0.0, math.inf, False, False),
        "devices_per_weight": (_INT, False, 1, 64, True, True),
    },
    "programming": {
        "coeffs_uS": (_LIST, True, None, None, True, True),
        "g_max_ref_uS": (_NUM, True, 0.0, math.inf, False, False),
        "scale": (_NUM, False, 0.0, math.inf, True, False),
    },
    "drift": {
        "t0_s": (_NUM, True, 0.0, math.inf, False, False),
        "nu_mean": (_PW, True, None, None, True, True),
        "nu_std": (_PW, True, None, None, True, True),
        "scale": (_NUM, False, 0.0, math.inf, True, False),
    },
    "read_noise": {
        "kind": (_STR, True, ("relative", "absolute"), None, True, True),
        "amplitude": (_PW, True, None, None, True, True),
        "t_offset_s": (_NUM, True, 0.0, math.inf, True, False),
        "t_scale_s": (_NUM, True, 0.0, math.inf, False, False),
        "t0_s": (_NUM, False, 0.0, math.inf, True, False),
        "scale": (_NUM, False, 0.0, math.inf, True, False),
        "dv": (_NUM, False, 0.0, math.inf, False, False),
        "clock": (_STR, False, ("wall", "drift"), None, True, True),
    },
    "temperature": {
        "t_ref_K": (_NUM, True, *TEMPERATURE_RANGE_K, True, True),
        "relaxation_tau0_s": (_NUM, False, 0.0, 1.0, True, True),
        "relaxation_t0_s": (_NUM, False, 0.0, math.inf, False, False),
        "drift_ea_eV": (_NUM, False, 0.0, 5.0, True, True),
        "drift_ea_fraction": (_NUM, False, 0.0, 1.0, True, True),
        "conduction_ea_gmax_eV": (_NUM, False, 0.0, 2.0, True, True),
        "conduction_ea_slope_eV": (_NUM, False, 0.0, 2.0, True, True),
        "conduction_ea_max_eV": (_NUM, False, 0.0, 2.0, True, True),
        "fault_ea_eV": (_NUM, False, 0.0, 5.0, True, True),
    },
    "faults": {
        "stuck_at_gmin_rate": (_NUM, False, 0.0, 1.0, True, True),
        "stuck_at_gmax_rate": (_NUM, False, 0.0, 1.0, True, True),
        "outlier_rate": (_NUM, False, 0.0, 1.0, True, True),
        "outlier_min_factor": (_NUM, False, 1.0, math.inf, True, False),
        "outlier_alpha": (_NUM, False, 0.0, math.inf, False, False),
        "outlier_max_factor": (_NUM, False, 1.0, math.inf, True, False),
        "onset_gmin_per_s": (_NUM, False, 0.0, math.inf, True, False),
        "onset_gmax_per_s": (_NUM, False, 0.0, math.inf, True, False),
        "onset_outlier_per_s": (_NUM, False, 0.0, math.inf, True, False),
    },
}
_COMMON = ("source", "assumptions")
_CLASSES = {
    "conductance": Conductance,
    "programming": Programming,
    "drift": Drift,
    "read_noise": AccumulatedNoise,
    "temperature": Temperature,
    "faults": Faults,
}


def _check_value(section: str, key: str, value: Any, spec: tuple, file: Any) -> Any:
    kind, _req, lo, hi, lo_inc, hi_inc = spec
    where = f"{section}.{key}"
    if kind == _PW:
        return parse_piecewise(value, file=file, key=where)
    if kind == _STR:
        if value not in lo:
            raise ConfigError(
                "invalid value", file=file, key=where, value=value, allowed=", ".join(lo)
            )
        return value
    if kind == _LIST:
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)
        ):
            raise ConfigError(
                "must be a non-empty list of numbers", file=file, key=where, value=value
            )
        return tuple(float(x) for x in value)
    return check_number(
        value,
        key=where,
        lo=lo,
        hi=hi,
        lo_inclusive=lo_inc,
        hi_inclusive=hi_inc,
        integer=kind == _INT,
        file=file,
    )


def _section(name: str, table: Any, file: Any) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"[{name}] must be a table", file=file, key=name, value=table)
    spec = _SPEC[name]
    allowed = (*spec, *_COMMON)
    for key in table:
        if key not in allowed:
            raise ConfigError(
                f"unknown key '{key}' in [{name}]",
                file=file,
                key=f"{name}.{key}",
                allowed=", ".join(allowed),
            )
    kwargs: dict[str, Any] = {}
    for key, kspec in spec.items():
        if key not in table:
            if kspec[1]:
                raise ConfigError(
                    f"missing required key '{key}' in [{name}]",
                    file=file,
                    key=f"{name}.{key}",
                    allowed=f"[{name}] needs " + ", ".join(k for k, s in spec.items() if s[1]),
                )
            continue
        kwargs[key] = _check_value(name, key, table[key], kspec, file)
    source = table.get("source", "")
    if not isinstance(source, str):
        raise ConfigError("must be a string", file=file, key=f"{name}.source", value=source)
    assumptions = table.get("assumptions", [])
    if not isinstance(assumptions, list) or not all(isinstance(a, str) for a in assumptions):
        raise ConfigError(
            "must be a list of key names", file=file, key=f"{name}.assumptions", value=assumptions
        )
    for a in assumptions:
        if a not in spec:
            raise ConfigError(
                "assumption names a key this section does not have",
                file=file,
                key=f"{name}.assumptions",
                value=a,
                allowed=", ".join(spec),
            )
    kwargs["source"] = source
    kwargs["assumptions"] = tuple(assumptions)
    return _CLASSES[name](**kwargs)


def card_fields(data: dict[str, Any], *, file: Any = "<dict>") -> dict[str, Any]:
    """Validate a parsed card: the fields of a ``DeviceModel`` (all but ``path``).

    ``DeviceModel(**card_fields(data), path=...)`` is the device; see
    :func:`analogsim.devices.model.device_from_dict`.
    """
    if not isinstance(data, dict):
        raise ConfigError("a device card is a TOML table", file=file, value=type(data).__name__)
    for key in data:
        if key not in TOP_KEYS:
            raise ConfigError(
                f"unknown top-level key '{key}'", file=file, key=key, allowed=", ".join(TOP_KEYS)
            )
    for key in ("name", "technology"):
        if key not in data:
            raise ConfigError(f"missing required key '{key}'", file=file, key=key)
    name = data["name"]
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_" for c in name):
        raise ConfigError(
            "invalid device name",
            file=file,
            key="name",
            value=name,
            allowed="letters, digits, '-' and '_'",
        )
    tech = data["technology"]
    if tech not in TECHNOLOGIES:
        raise ConfigError(
            "unknown technology",
            file=file,
            key="technology",
            value=tech,
            allowed=", ".join(TECHNOLOGIES),
        )
    for key in ("description", "source"):
        if not isinstance(data.get(key, ""), str):
            raise ConfigError("must be a string", file=file, key=key, value=data[key])
    if "conductance" not in data:
        raise ConfigError("missing required section [conductance]", file=file, key="conductance")
    parts = {s: _section(s, data[s], file) for s in SECTIONS if s in data}
    cond: Conductance = parts["conductance"]
    if cond.g_min_uS >= cond.g_max_uS:
        raise ConfigError(
            "g_min_uS must be below g_max_uS",
            file=file,
            key="conductance.g_min_uS",
            value=cond.g_min_uS,
            allowed=f"0 <= g_min_uS < g_max_uS = {cond.g_max_uS:g}",
        )
    faults: Faults | None = parts.get("faults")
    if faults is not None:
        total = faults.stuck_at_gmin_rate + faults.stuck_at_gmax_rate + faults.outlier_rate
        if total > 1.0:
            raise ConfigError(
                "fault rates add up to more than 1",
                file=file,
                key="faults",
                value=total,
                allowed="stuck_at_gmin_rate + stuck_at_gmax_rate + outlier_rate <= 1",
            )
        if faults.outlier_max_factor < faults.outlier_min_factor:
            raise ConfigError(
                "outlier_max_factor must be >= outlier_min_factor",
                file=file,
                key="faults.outlier_max_factor",
                value=faults.outlier_max_factor,
            )
    temp: Temperature | None = parts.get("temperature")
    if temp is not None:
        s_max = max_monotone_slope_eV()
        if temp.conduction_ea_slope_eV >= s_max:
            lo, hi = TEMPERATURE_RANGE_K
            raise ConfigError(
                "the read-out would fold over: a lower state would read above a higher one "
                f"for a chip programmed at {lo:g} K and read at {hi:g} K",
                file=file,
                key="temperature.conduction_ea_slope_eV",
                value=temp.conduction_ea_slope_eV,
                allowed=f"0 <= slope < k_B/(1/{lo:g} K - 1/{hi:g} K) = {s_max:.4f} eV",
            )
        if temp.demarcation and temp.relaxation_tau0_s >= temp.relaxation_t0_s:
            raise ConfigError(
                "the attempt time must be shorter than the glass age at programming",
                file=file,
                key="temperature.relaxation_tau0_s",
                value=temp.relaxation_tau0_s,
                allowed=f"0 (Arrhenius drift clock) or 0 < tau0 < relaxation_t0_s = "
                f"{temp.relaxation_t0_s:g} s",
            )
    rn: AccumulatedNoise | None = parts.get("read_noise")
    if rn is not None and rn.t_offset_s + rn.t0_s <= 0:
        raise ConfigError(
            "the noise clock v(t) = ln((t + t0_s + t_offset_s)/t_scale_s) must be defined at t = 0",
            file=file,
            key="read_noise.t_offset_s",
            value=rn.t_offset_s,
            allowed="t0_s + t_offset_s > 0",
        )
    return dict(
        name=name,
        technology=tech,
        description=data.get("description", ""),
        source=data.get("source", ""),
        conductance=cond,
        programming=parts.get("programming"),
        drift=parts.get("drift"),
        read_noise=rn,
        temperature=parts.get("temperature", Temperature()),
        faults=faults if faults is not None else Faults(),
    )


def read_card(path: str | Path) -> dict[str, Any]:
    """The parsed TOML table of one card file (validate it with :func:`card_fields`)."""
    return load_toml(path, missing="device card not found")


def card_dict(device: Any) -> dict[str, Any]:
    """The card of a device model as plain data (inverse of :func:`card_fields`)."""
    out: dict[str, Any] = {
        "name": device.name,
        "technology": device.technology,
        "description": device.description,
        "source": device.source,
    }
    for s in SECTIONS:
        part = getattr(device, s)
        if part is not None:
            out[s] = section_table(part)
    return out


def section_table(obj: Any) -> dict[str, Any]:
    """Fields of a section dataclass as a card table (piecewise functions in card form)."""
    out: dict[str, Any] = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, Piecewise):
            v = v.to_toml()
        elif isinstance(v, tuple):
            v = list(v)
        if f.name in ("source",) and not v:
            continue
        if f.name == "assumptions" and not v:
            continue
        out[f.name] = v
    return out


def with_card_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The card ``data`` with ``section.key`` (or ``section_key``) values replaced (in place;
    returned). Validate the result with :func:`card_fields`."""
    for dotted, value in overrides.items():
        section, key = split_override(dotted)
        data.setdefault(section, {})[key] = value
    return data


def split_override(dotted: str) -> tuple[str, str]:
    """``"drift.scale"`` or ``"drift_scale"`` to ``("drift", "scale")``."""
    if "." in dotted:
        section, key = dotted.split(".", 1)
        if section not in SECTIONS:
            raise ConfigError(
                "unknown card section in override", key=dotted, allowed=", ".join(SECTIONS)
            )
        return section, key
    for section in SECTIONS:
        prefix = section + "_"
        if dotted.startswith(prefix):
            return section, dotted[len(prefix) :]
    raise ConfigError(
        "override must be 'section.key' or 'section_key'",
        key=dotted,
        allowed="sections " + ", ".join(SECTIONS),
    )


__all__ = [
    "SECTIONS",
    "card_dict",
    "card_fields",
    "read_card",
    "section_table",
    "split_override",
    "with_card_overrides",
]
