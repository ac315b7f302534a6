"""analogsim.cost: energy, latency and area of a placement plan (docs/cost.md)."""
