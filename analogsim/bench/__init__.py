"""analogsim.bench: benchmarks measured as ratios within one run (``make bench``)."""
