"""Interchange with other simulators: export an analogsim mapping to aihwkit and read
an aihwkit-trained state dict back (docs/training.md)."""
