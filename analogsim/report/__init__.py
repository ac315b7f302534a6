"""analogsim.report."""
