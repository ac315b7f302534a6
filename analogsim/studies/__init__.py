"""analogsim.studies: the measurements behind the commands (evaluate, sweep, compare,
clocked generation and streams, robustness, the demo), each writing a run directory.

Studies sit above every other layer except ``bench`` and ``cli``: they may use devices,
tiles, mapping, models, metrics, cost, clock, train and report; nothing below imports them.
"""
