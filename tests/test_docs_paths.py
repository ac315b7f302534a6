"""Every module path and dotted analogsim name a doc mentions exists.

Docs name code as `analogsim/clock/profiles.py` (a file), `clock/profiles.py` (a file
inside the package, the short form of docs/architecture.md), `analogsim.studies.train.train`
(a module, then attributes: functions, classes, their methods) and
`from analogsim.x import a, b`. After a restructuring these go stale silently; this test
finds each one and says which doc and line names it. Run as a script for the list:
`python -m tests.test_docs_paths`.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
PACKAGES = sorted(p.name for p in (ROOT / "analogsim").iterdir() if (p / "__init__.py").exists())

# Names a doc uses on purpose for something that does not exist, with the reason.
HYPOTHETICAL = {
    "analogsim.studies.mystudy": "docs/architecture.md: the example of where a new study goes",
}
# `analogsim.json` is a file a checkpoint writes, not a module.
FILE_SUFFIXES = {"json", "toml", "csv", "md", "txt", "png", "sqlite", "py"}

FULL_PATH = re.compile(r"(?<![\w/.-])((?:analogsim|tests|experiments)/[\w/]*\w\.py)\b")
SHORT_PATH = re.compile(r"(?<![\w/.-])((?:" + "|".join(PACKAGES) + r")/[\w/]*\w\.py)\b")
DOTTED = re.compile(r"(?<![\w.])(analogsim(?:\.[A-Za-z_]\w*)+)")
FROM_IMPORT = re.compile(r"from\s+(analogsim(?:\.\w+)*)\s+import\s+\(?([\w\s,]+)")


def references() -> list[tuple[str, int, str, str]]:
    """(doc, line number, kind, name) for every reference in the docs."""
    found = []
    for doc in DOCS:
        if not doc.exists():
            continue
        rel = doc.relative_to(ROOT).as_posix()
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for m in FULL_PATH.finditer(line):
                found.append((rel, number, "path", m.group(1)))
            for m in SHORT_PATH.finditer(line):
                found.append((rel, number, "path", "analogsim/" + m.group(1)))
            for m in DOTTED.finditer(line):
                name = m.group(1)
                if name.rsplit(".", 1)[1] in FILE_SUFFIXES and name.count(".") == 1:
                    continue
                found.append((rel, number, "name", name))
            for m in FROM_IMPORT.finditer(line):
                for item in m.group(2).split(","):
                    attr = item.split(" as ")[0].strip()
                    if attr:
                        found.append((rel, number, "name", f"{m.group(1)}.{attr}"))
    return found


def _module_file(module: str) -> Path | None:
    base = ROOT / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


_TREES: dict[Path, ast.Module] = {}


def _tree(path: Path) -> ast.Module:
    if path not in _TREES:
        _TREES[path] = ast.parse(path.read_text(encoding="utf-8"))
    return _TREES[path]


def _lookup(body: list[ast.stmt], attr: str) -> ast.AST | None:
    """The statement of `body` that binds `attr` (a def, class, assignment or import)."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name == attr:
                return node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names = target.elts if isinstance(target, ast.Tuple) else [target]
                if any(isinstance(n, ast.Name) and n.id == attr for n in names):
                    return node
        elif isinstance(node, ast.AnnAssign):
            if isinstance(node.target, ast.Name) and node.target.id == attr:
                return node
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if (alias.asname or alias.name.split(".")[0]) == attr:
                    return (
                        ast.ImportFrom(module=getattr(node, "module", None), names=[alias], level=0)
                        if isinstance(node, ast.ImportFrom)
                        else node
                    )
        elif isinstance(node, (ast.If, ast.Try)):
            found = _lookup(node.body, attr)
            if found is not None:
                return found
    return None


def resolves(name: str) -> bool:
    """Whether `name` exists: the longest prefix that is a module of the tree, then its
    attributes read from the source (defs, classes and their members, assignments,
    re-exports followed to their module) without importing torch; a lazy module
    `__getattr__` (analogsim/__init__.py) answers for the names it spells out."""
    parts = name.split(".")
    for split in range(len(parts), 0, -1):
        module = ".".join(parts[:split])
        if _module_file(module) is not None:
            return _has(module, parts[split:])
    return False


def _has(module: str, attrs: list[str]) -> bool:
    if not attrs:
        return True
    path = _module_file(module)
    body = _tree(path).body
    node = _lookup(body, attrs[0])
    if node is None:
        if _module_file(f"{module}.{attrs[0]}") is not None:  # a submodule
            return _has(f"{module}.{attrs[0]}", attrs[1:])
        lazy = _lookup(body, "__getattr__")
        if lazy is not None:
            names = {c.value for c in ast.walk(lazy) if isinstance(c, ast.Constant)}
            if attrs[0] not in names:
                return False
            if len(attrs) == 1:
                return True
            obj = importlib.import_module(module)
            for attr in attrs:
                if not hasattr(obj, attr):
                    return False
                obj = getattr(obj, attr)
            return True
        return False
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("analogsim"):
        source = node.names[0].name
        if _module_file(f"{node.module}.{source}") is not None:
            return _has(f"{node.module}.{source}", attrs[1:])
        return _has(node.module, [source, *attrs[1:]])
    if isinstance(node, ast.ClassDef):
        for attr in attrs[1:]:
            member = _lookup(node.body, attr)
            if member is None:
                # a member of a base class in the tree, or a dataclass field: ask Python
                obj = getattr(importlib.import_module(module), attrs[0])
                return hasattr(obj, attr)
            if not isinstance(member, ast.ClassDef):
                return attr == attrs[-1]
            node = member
        return True
    return len(attrs) == 1  # an attribute of a function or constant is not checked


def broken() -> list[str]:
    bad, cache = [], {}
    for doc, number, kind, name in references():
        if kind == "path":
            ok = (ROOT / name).exists()
        elif any(name == h or name.startswith(h + ".") for h in HYPOTHETICAL):
            ok = True
        else:
            if name not in cache:
                cache[name] = resolves(name)
            ok = cache[name]
        if not ok:
            bad.append(f"{doc}:{number}: {kind} {name} does not exist")
    return bad


def test_docs_find_references():
    # the patterns still see the docs' references (a regex broken by an edit finds none)
    kinds = {kind for _, _, kind, _ in references()}
    assert kinds == {"path", "name"}


@pytest.mark.parametrize(
    ("name", "exists"),
    [
        ("analogsim.studies.train.train", True),
        ("analogsim.train.loop.fit", True),
        ("analogsim.clock.profiles.Profile.drift_age", True),  # a method
        ("analogsim.train.HWAConfig", True),  # a re-export
        ("analogsim.convert", True),  # the package's lazy __getattr__
        ("analogsim.train.train", False),  # moved to studies in issue 9
        ("analogsim.clock.run_generate", False),
        ("analogsim.clock.profiles.Profile.nope", False),
    ],
)
def test_resolver_tells_moved_names_from_existing_ones(name, exists):
    assert resolves(name) is exists


def test_docs_name_only_existing_code():
    bad = broken()
    assert not bad, "docs name code that does not exist:\n" + "\n".join(bad)


@pytest.mark.parametrize("name", sorted(HYPOTHETICAL))
def test_hypothetical_names_stay_hypothetical(name):
    # once the example exists the allowance is not needed
    assert not resolves(name)


if __name__ == "__main__":
    problems = broken()
    print("\n".join(problems) or f"all {len(references())} references exist")
    raise SystemExit(1 if problems else 0)
