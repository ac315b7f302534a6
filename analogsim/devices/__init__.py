"""Device physics: cards, device models, statistical noise and digital quantizers.

>>> from analogsim.devices import load_device
>>> pcm = load_device("pcm")
>>> pcm.conductance.g_max_uS
25.0
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analogsim.devices.card import card_dict
from analogsim.devices.model import DeviceModel, device_from_dict, load_card
from analogsim.errors import ConfigError
from analogsim.paths import data_dir


def card_paths() -> dict[str, Path]:
    """Shipped cards by name (file stem)."""
    return {p.stem: p for p in sorted(data_dir("devices").glob("*.toml"))}


def list_devices() -> list[str]:
    """Names of the shipped device cards."""
    return list(card_paths())


def load_device(
    name_or_path: str | Path | DeviceModel, overrides: dict[str, Any] | None = None
) -> DeviceModel:
    """A device model from a shipped card name (``"pcm"``) or a path to a TOML card.

    ``overrides`` replace card values (``{"drift.scale": 2}``) and are validated.
    """
    if isinstance(name_or_path, DeviceModel):
        dev = name_or_path
    else:
        text = str(name_or_path)
        paths = card_paths()
        if text in paths:
            dev = load_card(paths[text])
        elif text.endswith(".toml") or Path(text).exists():
            dev = load_card(text)
        else:
            raise ConfigError(
                "unknown device",
                key="device",
                value=text,
                allowed="a shipped card (" + ", ".join(paths) + ") or a path to a .toml card",
            )
    if overrides:
        dev = dev.with_overrides(overrides)
    return dev


__all__ = [
    "DeviceModel",
    "card_dict",
    "device_from_dict",
    "list_devices",
    "load_card",
    "load_device",
]
