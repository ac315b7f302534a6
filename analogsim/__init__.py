"""analogsim: neural networks on simulated analog in-memory-computing hardware."""

from __future__ import annotations

__version__ = "0.1.0"
