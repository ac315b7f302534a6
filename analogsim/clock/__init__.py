"""analogsim.clock."""
