"""analogsim.cli."""
