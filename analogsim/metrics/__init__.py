"""analogsim.metrics."""
