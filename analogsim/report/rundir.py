"""Run directories: every command that measures leaves one.

Layout::

    runs/<YYYYmmdd-HHMMSS>-<command>/
        manifest.json   command, resolved config, seeds, versions, device cards, git revision, status
        results.sqlite  the journal: one row per finished point, committed as it is made
        results.csv     tidy: one row per measurement, exported from the journal after every point
        *.png           plots drawn from results.csv (redraw any time with `analogsim plot DIR`)

A point (one :meth:`RunDir.write`) is either wholly on disk or not at all, whatever
stops the process (Ctrl-C, ``kill -9``, a full disk, a power cut): it is one SQLite
transaction, and ``results.csv`` and ``manifest.json`` are replaced atomically
(temporary file, ``fsync``, rename, ``fsync`` of the folder), never appended to.
Running the same command again with the same ``--out`` continues: points already in the
journal are skipped, nothing is redone or lost; ``results.csv`` is rewritten from the
journal when it is out of step (cut off or edited). A directory written before the
journal existed (``results.csv`` only, maybe cut off mid-row) is taken over: complete
rows are kept, a torn tail (with the rest of its point) is dropped, and both are said on
stderr. A different config for an existing directory is refused (use a new ``--out``).
Why a journal and not an append protocol: ``docs/architecture.md``, "Run directories".
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import io
import json
import math
import os
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from analogsim.errors import ConfigError
from analogsim.provenance import git_revision, jsonable, versions

JOURNAL = "results.sqlite"

_latest: RunDir | None = None  # the run directory opened last in this process


def default_out(command: str, root: str | Path = "runs") -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{stamp}-{command}"


def say(line: str) -> None:
    """One line for the user on stderr (resume, repairs): never on stdout, which may be
    a pipe that expects JSON."""
    print(line, file=sys.stderr, flush=True)


class RunDir:
    """A run directory with a manifest, a journal of finished points and a tidy
    ``results.csv`` exported from it.

    Args:
        path: the folder (created); ``None`` gives ``runs/<timestamp>-<command>``.
        command: the command name (``eval``, ``compare`` ...).
        config: the resolved configuration; must match on resume.
        columns: the columns of ``results.csv`` in order.
        key_columns: the columns that identify a *point* (for resume).

    Raises:
        ConfigError: a different run lives in ``path``, its manifest or journal is
            damaged, or the folder cannot be written (read-only, disk full): one message
            naming the file and what to do.
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
        global _latest
        self.path = Path(path) if path is not None else default_out(command)
        self.command = command
        self.config = jsonable(config)
        self.columns = list(columns)
        self.key_columns = list(key_columns)
        self.results_path = self.path / "results.csv"
        self.manifest_path = self.path / "manifest.json"
        self.journal_path = self.path / JOURNAL
        self.expected: int | None = None
        self._done: set[tuple[str, ...]] = set()
        self.rows: list[dict[str, Any]] = []
        self._lines: list[str] = []  # results.csv rows, encoded, in journal order
        self.points = 0  # points in the journal (finished, in this run or before)
        self._announced = False
        self._imported = False
        with _writing(self.path, self.path):
            self.path.mkdir(parents=True, exist_ok=True)
        old = _read_manifest(self.manifest_path)
        if old is not None:
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
        self._db: sqlite3.Connection | None = self._open_journal()
        self.resumed = self.points
        try:
            self._sync_csv()
            self.manifest["status"] = "running"
            self.manifest["resumed_points"] = len(self._done)
            self._write_manifest()
        except BaseException:
            self._db.close()  # no open file is left behind by a refused directory
            raise
        _latest = self

    # ------------------------------------------------------------------ journal
    def _open_journal(self) -> sqlite3.Connection:
        """Open (or create) the journal and load its points; a directory without one
        (written before it existed) is imported from its results.csv in the same
        transaction that creates the journal, so a kill during the import leaves none."""
        db = None
        try:
            with _writing(self.journal_path):
                db = sqlite3.connect(self.journal_path, isolation_level=None)
                db.execute("PRAGMA synchronous=FULL")
                db.execute("BEGIN IMMEDIATE")
                db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS points (seq INTEGER PRIMARY KEY, rows TEXT NOT NULL)"
                )
                got = db.execute("SELECT value FROM meta WHERE key = 'columns'").fetchone()
                if got is None:
                    db.execute(
                        "INSERT INTO meta VALUES ('columns', ?)", (json.dumps(self.columns),)
                    )
                    self._imported = self.results_path.exists()
                    for cells in self._import_csv():
                        db.execute("INSERT INTO points (rows) VALUES (?)", (json.dumps(cells),))
                elif json.loads(got[0]) != self.columns:
                    db.execute("ROLLBACK")
                    raise ConfigError(
                        "results.csv has other columns than this command writes",
                        file=self.results_path,
                        value=json.loads(got[0]),
                        allowed=",".join(self.columns),
                    )
                db.execute("COMMIT")
                for (text,) in db.execute("SELECT rows FROM points ORDER BY seq"):
                    self._add(json.loads(text))
        except BaseException as exc:
            if db is not None:
                db.close()
            if not isinstance(exc, sqlite3.DatabaseError):
                raise
            if _is_write_failure(exc):
                raise _cannot_write(self.journal_path, exc, self.path) from None
            raise ConfigError(
                f"the journal of finished points is damaged ({exc})",
                file=self.journal_path,
                allowed="move it away and rerun the same command (the points are then "
                "taken from results.csv), or use a new --out",
            ) from None
        return db

    def _import_csv(self) -> list[list[list[str]]]:
        """Points of a results.csv written without a journal: complete rows, grouped by
        key; a torn tail and the rest of its point are dropped (and said)."""
        if not self.results_path.exists():
            return []
        with _writing(self.results_path):
            text = self.results_path.read_bytes().decode("utf-8", errors="replace")
        header, rows, torn = parse_csv(text, len(self.columns))
        if header is not None and header != self.columns:
            raise ConfigError(
                "results.csv has other columns than this command writes",
                file=self.results_path,
                value=header,
                allowed=",".join(self.columns),
            )
        groups: list[list[list[str]]] = []
        seen: set[tuple[str, ...]] = set()
        key_idx = [self.columns.index(c) for c in self.key_columns]
        last_key: tuple[str, ...] | None = None
        for cells in rows:
            key = tuple(cells[i] for i in key_idx)
            if key == last_key:
                groups[-1].append(cells)
            elif key in seen:
                torn += 1  # a duplicate of an earlier row: keep the first
            else:
                groups.append([cells])
                seen.add(key)
                last_key = key
        dropped = torn
        if (
            groups
            and self.manifest.get("status") != "complete"
            and (
                _same_point(text, key_idx, last_key)
                or (len(groups) > 1 and len(groups[-1]) < max(len(g) for g in groups[:-1]))
            )
        ):
            # the cut fell inside the last point's write (its torn row has the last
            # point's key, or it has fewer rows than the others): its earlier rows go too
            dropped += len(groups.pop())
        if dropped:
            say(
                f"{self.results_path}: dropped {dropped} incomplete row(s) (a run was cut "
                "off mid-write); their point(s) will be measured again"
            )
        return groups

    def _add(self, cells_rows: list[list[str]]) -> None:
        for cells in cells_rows:
            row = dict(zip(self.columns, cells, strict=True))
            self.rows.append(row)
            self._done.add(self._key(row))
            self._lines.append(_encode(cells))
        self.points += 1

    # ------------------------------------------------------------------ points
    def _key(self, row: dict[str, Any]) -> tuple[str, ...]:
        return tuple(_fmt(row.get(c)) for c in self.key_columns)

    def expect(self, total: int) -> None:
        """Announce how many points the study will hold in this directory (for the
        resume and interrupt lines). The first announcement wins, so a study that runs
        others into the same directory (compare runs eval) announces its total first."""
        if self.expected is None:
            self.expected = int(total)
        self._announce()

    def _announce(self) -> None:
        if self._announced:
            return
        self._announced = True
        if self.resumed:
            of = f" of {self.expected}" if self.expected is not None else ""
            say(f"resuming: {self.resumed}{of} points already done ({self.path})")

    def done(self, **point: Any) -> bool:
        """True when the point (values of the key columns) is already in the journal."""
        self._announce()
        return self._key(point) in self._done

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        """Commit rows (one point's measurements) as one transaction, then export
        results.csv: the point is wholly on disk when this returns, or not at all."""
        rows = list(rows)
        if not rows:
            return
        self._announce()
        for r in rows:
            extra = set(r) - set(self.columns)
            if extra:
                raise ValueError(f"row has keys that are not columns: {sorted(extra)}")
        cells_rows = [[_fmt(r.get(c)) for c in self.columns] for r in rows]
        try:
            if self._db is None:  # written after finish(): open it again
                self._db = sqlite3.connect(self.journal_path, isolation_level=None)
                self._db.execute("PRAGMA synchronous=FULL")
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("INSERT INTO points (rows) VALUES (?)", (json.dumps(cells_rows),))
        except sqlite3.DatabaseError as exc:
            raise _cannot_write(self.journal_path, exc, self.path) from None
        self._add(cells_rows)
        self._export()

    # ------------------------------------------------------------------ files
    def _csv_text(self) -> str:
        return "".join([_encode(self.columns), *self._lines])

    def _export(self) -> None:
        _atomic_write(self.results_path, self._csv_text(), self.path)

    def _sync_csv(self) -> None:
        """Make results.csv hold exactly the journal's rows (after a cut or an edit)."""
        want = self._csv_text()
        if not self.results_path.exists():
            if self._lines:
                self._export()
            return
        with _writing(self.results_path):
            have = self.results_path.read_bytes().decode("utf-8", errors="replace")
        if have == want:
            return
        if not self._lines and not have.strip():
            return
        if self._imported or have.replace("\r\n", "\n") == want:
            pass  # taken over from an older run (what was dropped is said): '\n' endings
        elif want.startswith(have):
            say(f"{self.results_path}: was cut off; restored from {JOURNAL}")
        else:
            kept = self.results_path.with_name("results.csv.edited")
            with _writing(kept):
                os.replace(self.results_path, kept)
            say(
                f"{self.results_path}: differed from {JOURNAL} (edited, or cut off mid-row); "
                f"rewritten from the journal, the previous file kept as {kept.name}"
            )
        self._export()

    def _write_manifest(self) -> None:
        _atomic_write(
            self.manifest_path, json.dumps(jsonable(self.manifest), indent=2) + "\n", self.path
        )

    def note(self, **items: Any) -> None:
        """Add facts to the manifest (timings, summaries) and save it."""
        self.manifest.update(jsonable(items))
        self._write_manifest()

    def finish(self, status: str = "complete") -> None:
        """Record how the run ended and close the journal (every point is already in)."""
        self._announce()
        if self._db is not None:
            self._db.close()
            self._db = None
        self.manifest["status"] = status
        self.manifest["finished"] = _dt.datetime.now().isoformat(timespec="seconds")
        self._write_manifest()

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish("complete")
            return
        # the first error is the one the user sees: a manifest that cannot be written
        # now (full disk) must not replace it; the points are already safe
        with contextlib.suppress(ConfigError, OSError):
            if issubclass(exc_type, KeyboardInterrupt):
                self.finish("interrupted")
            else:
                self.manifest["error"] = f"{exc_type.__name__}: {exc}"
                self.finish("failed")


def interruption_line() -> str:
    """What to tell a user after Ctrl-C: how far the last run directory got."""
    run = _latest
    if run is None:
        return "interrupted before any point was measured; nothing to resume"
    of = f" of {run.expected}" if run.expected is not None else ""
    return (
        f"interrupted after {run.points}{of} points; rerun the same command to continue "
        f"({run.path})"
    )


# ---------------------------------------------------------------------- helpers
def _encode(cells: Sequence[str]) -> str:
    """One CSV line; a row with a carriage return in a cell (a generated token can be
    ``"\\r"``) is written fully quoted, since minimal quoting with ``"\\n"`` lines
    leaves a bare ``"\\r"`` that readers take for a line break."""
    buf = io.StringIO()
    quoting = csv.QUOTE_ALL if any("\r" in c for c in cells) else csv.QUOTE_MINIMAL
    csv.writer(buf, lineterminator="\n", quoting=quoting).writerow(cells)
    return buf.getvalue()


def parse_csv(text: str, width: int) -> tuple[list[str] | None, list[list[str]], int]:
    """Header, complete rows and the number of incomplete rows of a CSV text.

    A row is complete when its line ends (``\\n``) and it has ``width`` cells: a torn
    last line, or two rows glued together by an append after a cut, are incomplete.
    """
    end = text.rfind("\n") + 1
    body, tail = text[:end], text[end:]
    try:
        records = list(csv.reader(io.StringIO(body)))
    except csv.Error:
        records = [next(csv.reader([line]), []) for line in body.splitlines()]
    records = [r for r in records if r]
    header = records[0] if records else None
    torn = 1 if tail.strip() else 0
    rows = []
    for r in records[1:]:
        if len(r) == width:
            rows.append(r)
        else:
            torn += 1
    return header, rows, torn


def _same_point(text: str, key_idx: list[int], key: tuple[str, ...] | None) -> bool:
    """True when the torn last line of ``text`` (no newline) shows, in its complete
    cells, the key ``key``: a row of the same point as the rows before it."""
    tail = text[text.rfind("\n") + 1 :]
    if key is None or not tail.strip():
        return False
    cells = next(csv.reader([tail]), [])[:-1]  # the last cell may be cut
    return all(i < len(cells) for i in key_idx) and tuple(cells[i] for i in key_idx) == key


def _read_manifest(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        with _writing(path):
            text = path.read_text(encoding="utf-8", errors="replace")
        manifest = json.loads(text)
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise ConfigError(
            f"damaged, not a complete JSON object ({exc}); the finished points in "
            f"results.csv and {JOURNAL} are untouched",
            file=path,
            allowed="a new --out folder, or delete manifest.json and rerun the same "
            "command to continue here (the config is then not checked against the old run)",
        ) from None
    return manifest


_WRITE_ERRORS = ("readonly", "read-only", "full", "disk i/o", "unable to open", "permission")


def _is_write_failure(exc: sqlite3.DatabaseError) -> bool:
    return any(w in str(exc).lower() for w in _WRITE_ERRORS)


def _cannot_write(path: Path, exc: BaseException, folder: Path) -> ConfigError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return ConfigError(
        f"cannot write ({reason}); every finished point is kept in {folder}",
        file=path,
        allowed="a writable --out folder with free space; rerun the same command to continue",
    )


@contextlib.contextmanager
def _writing(path: Path, folder: Path | None = None) -> Iterator[None]:
    """Turn an OSError of the file system (read-only, full, too large) into one message."""
    try:
        yield
    except OSError as exc:
        raise _cannot_write(path, exc, folder or path.parent) from None


def _atomic_write(path: Path, text: str, folder: Path) -> None:
    """Replace ``path`` by ``text``: temporary file, fsync, rename, fsync of the folder.
    A reader (or a crash) sees the old file or the new one, never a part."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(folder)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise _cannot_write(path, exc, folder) from None


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not possible on this platform (Windows): the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
    """Rows of a run directory's results.csv (or of a CSV path); incomplete rows (a run
    cut off mid-write before the journal existed) are left out."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.csv"
    text = p.read_bytes().decode("utf-8", errors="replace")
    if not text.strip():
        return []
    header = next(csv.reader([text.split("\n", 1)[0]]))
    _, rows, _ = parse_csv(text, len(header))
    return [dict(zip(header, r, strict=True)) for r in rows]


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> Path:
    """Write ``rows`` (dicts) with ``columns`` in order, atomically; floats round-trip
    (``repr``), bools are ``1``/``0``, None is empty (a run's ``trace.csv``, ``events.csv``)."""
    path = Path(path)
    text = _encode(list(columns)) + "".join(
        _encode([_fmt(r.get(c), bool_digit=True) for c in columns]) for r in rows
    )
    _atomic_write(path, text, path.parent)
    return path


def read_csv(path: str | Path) -> list[dict[str, str]]:
    """Rows of a CSV file (a trace, events, results) as dicts of strings."""
    with Path(path).open(newline="") as fh:
        return list(csv.DictReader(fh))
