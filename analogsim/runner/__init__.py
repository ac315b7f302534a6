"""Studies written as configs: ``analogsim run EXPERIMENT.toml``.

A config names models, a grid of coordinates, metrics and a report; the runner expands
the grid into points, seeds each point from the config and its coordinates, runs the
points on an executor (local worker processes, or a Ray cluster) and appends each
finished point to the run directory, so a killed run resumes where it stopped.
"""
