"""analogsim.devices."""
