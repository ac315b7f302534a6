"""analogsim.tiles."""
