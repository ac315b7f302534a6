"""analogsim.models."""
