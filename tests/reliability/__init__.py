"""Fault-injection suite (issue 10): run directories survive any crash, no traceback.

It mirrors no package: it attacks the run directory of every measuring command from
outside, the way a crash, a full disk or a careless edit would, and checks what a user
would see afterwards.

* ``test_kill.py``: ``kill -9`` at seeded random moments of ``eval``, ``sweep``,
  ``compare``, ``generate`` and ``train`` (subprocesses), then the same command again:
  the rows equal an uninterrupted run's (same seeds, same numbers), none lost, none twice.
* ``test_files.py``: ``results.csv`` cut at every byte offset of its last point (with and
  without the journal, in-process), a torn rename temp file, a damaged manifest or
  journal, a read-only folder and a file-size limit (``RLIMIT_FSIZE`` with ``SIGXFSZ``
  ignored): one clear line, the finished points intact, no traceback.

The counts (runs killed, rows lost, rows duplicated, tracebacks shown) are printed in the
terminal summary and written to ``reliability_counts.json`` in pytest's temporary folder.
Heavier variants (more kill moments per command) are marked ``slow``.
"""
