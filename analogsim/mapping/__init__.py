"""analogsim.mapping."""
