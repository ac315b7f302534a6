"""Errors that tell the user how to fix their input."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class AnalogsimError(Exception):
    """Base class of every error analogsim raises on purpose."""


class ConfigError(AnalogsimError, ValueError):
    """A device card, mapping file or command-line value is invalid.

    The message always names the file (when there is one), the key, the bad value
    and what is allowed, so the user can fix it without reading the source.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        key: str | None = None,
        value: Any = None,
        allowed: str | None = None,
    ) -> None:
        parts = []
        if file is not None:
            parts.append(f"{file}")
        if key is not None:
            parts.append(f"key '{key}'")
        head = ": ".join(parts)
        text = f"{head}: {message}" if head else message
        if value is not None:
            text += f" (got {value!r})"
        if allowed is not None:
            text += f"; allowed: {allowed}"
        super().__init__(text)
        self.file = file
        self.key = key
        self.value = value
        self.allowed = allowed


class MissingDependencyError(AnalogsimError, ImportError):
    """An optional dependency is missing; the message names the pip extra."""
