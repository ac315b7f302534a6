"""Run directories: every command that measures leaves one.

Layout::

    runs/<YYYYmmdd-HHMMSS>-<command>/
        manifest.json   command, resolved config, seeds, versions, device cards, git revision, status
        results.csv     tidy: one row per measurement, appended (and flushed) as it is made
        *.png           plots drawn from results.csv (redraw any time with `analogsim plot DIR`)

Interrupting a run leaves every finished row on disk (``status: "interrupted"``).
Running the same command again with the same ``--out`` continues: points whose rows
are already in ``results.csv`` are skipped, nothing is redone or lost. A different
config for an existing directory is refused (use a new ``--out``).
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from analogsim.errors import ConfigError
from analogsim.provenance import git_revision, jsonable, versions


def default_out(command: str, root: str | Path = "runs") -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{stamp}-{command}"


class RunDir:
    """A run directory with a manifest and an append-only tidy ``results.csv``.

    Args:
        path: the folder (created); ``None`` gives ``runs/<timestamp>-<command>``.
        command: the command name (``eval``, ``compare`` ...).
        config: the resolved configuration; must match on resume.
        columns: the columns of ``results.csv`` in order.
        key_columns: the columns that identify a *point* (for resume).
    """

    def __init__(
        self,
        path: str | Path | None,
        command: str,
        config: dict[str, Any],
        columns: list[str],
        key_columns: list[str],
        *,
        cards: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else default_out(command)
        self.path.mkdir(parents=True, exist_ok=True)
        self.command = command
        self.config = jsonable(config)
        self.columns = list(columns)
        self.key_columns = list(key_columns)
        self.results_path = self.path / "results.csv"
        self.manifest_path = self.path / "manifest.json"
        self._done: set[tuple[str, ...]] = set()
        self.rows: list[dict[str, Any]] = []
        if self.manifest_path.exists():
            old = json.loads(self.manifest_path.read_text())
            if old.get("command") != command or old.get("config") != self.config:
                raise ConfigError(
                    "this run directory holds a different run; resume needs the same command "
                    "and config",
                    file=self.manifest_path,
                    allowed="the same command line, or a new --out folder",
                )
            self.manifest = old
        else:
            self.manifest = {
                "command": command,
                "argv": sys.argv,
                "config": self.config,
                "versions": versions(),
                "git": git_revision(),
                "device_cards": jsonable(cards or {}),
                "created": _dt.datetime.now().isoformat(timespec="seconds"),
            }
        if self.results_path.exists():
            with self.results_path.open(newline="") as fh:
                reader = csv.DictReader(fh)
                if reader.fieldnames and list(reader.fieldnames) != self.columns:
                    raise ConfigError(
                        "results.csv has other columns than this command writes",
                        file=self.results_path,
                        value=reader.fieldnames,
                        allowed=",".join(self.columns),
                    )
                for row in reader:
                    self.rows.append(row)
                    self._done.add(self._key(row))
        self.manifest["status"] = "running"
        self.manifest["resumed_points"] = len(self._done)
        self._write_manifest()
        self._fh = None

    # ------------------------------------------------------------------ points
    def _key(self, row: dict[str, Any]) -> tuple[str, ...]:
        return tuple(_fmt(row.get(c)) for c in self.key_columns)

    def done(self, **point: Any) -> bool:
        """True when the point (values of the key columns) is already in results.csv."""
        return self._key(point) in self._done

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append rows (one point's measurements) and flush them to disk at once."""
        rows = list(rows)
        if not rows:
            return
        new = not self.results_path.exists() or self.results_path.stat().st_size == 0
        with self.results_path.open("a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="raise")
            if new:
                w.writeheader()
            for r in rows:
                w.writerow({c: _fmt(r.get(c)) for c in self.columns})
            fh.flush()
            os.fsync(fh.fileno())
        for r in rows:
            self.rows.append({c: _fmt(r.get(c)) for c in self.columns})
            self._done.add(self._key(r))

    # ------------------------------------------------------------------ manifest
    def _write_manifest(self) -> None:
        tmp = self.manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(jsonable(self.manifest), indent=2) + "\n")
        tmp.replace(self.manifest_path)

    def note(self, **items: Any) -> None:
        """Add facts to the manifest (timings, summaries) and save it."""
        self.manifest.update(jsonable(items))
        self._write_manifest()

    def finish(self, status: str = "complete") -> None:
        self.manifest["status"] = status
        self.manifest["finished"] = _dt.datetime.now().isoformat(timespec="seconds")
        self._write_manifest()

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish("complete")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.finish("interrupted")
        else:
            self.manifest["error"] = f"{exc_type.__name__}: {exc}"
            self.finish("failed")


def _fmt(v: Any, *, bool_digit: bool = False) -> str:
    """A CSV cell: empty for None, floats that round-trip (``repr``), ``inf``/``nan``;
    with ``bool_digit`` a bool is ``1``/``0`` (else ``True``/``False``)."""
    if v is None:
        return ""
    if bool_digit and isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if math.isnan(v):
            return "nan"
        return repr(v)
    return str(v)


def read_results(path: str | Path) -> list[dict[str, str]]:
    """Rows of a run directory's results.csv (or of a CSV path)."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.csv"
    with p.open(newline="") as fh:
        return list(csv.DictReader(fh))


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> Path:
    """Write ``rows`` (dicts) with ``columns`` in order, atomically; floats round-trip
    (``repr``), bools are ``1``/``0``, None is empty (a run's ``trace.csv``, ``events.csv``)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        for r in rows:
            w.writerow([_fmt(r.get(c), bool_digit=True) for c in columns])
    tmp.replace(path)
    return path


def read_csv(path: str | Path) -> list[dict[str, str]]:
    """Rows of a CSV file (a trace, events, results) as dicts of strings."""
    with Path(path).open(newline="") as fh:
        return list(csv.DictReader(fh))
