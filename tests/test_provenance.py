"""Tests for analogsim.provenance: versions, git revision, JSON-safe values."""

from __future__ import annotations

import json
import math
from pathlib import Path

from analogsim.provenance import git_revision, jsonable, versions


def test_versions_name_python_and_torch() -> None:
    v = versions()
    assert {"python", "platform", "torch"} <= set(v)


def test_git_revision_is_a_commit_or_none() -> None:
    rev = git_revision()
    assert rev is None or (len(rev["commit"]) == 40 and isinstance(rev["dirty"], bool))


def test_jsonable_round_trips_through_json() -> None:
    x = {1: (1.0, math.inf, -math.inf, math.nan), "p": Path("a/b"), "o": object, "n": None}
    y = jsonable(x)
    assert json.loads(json.dumps(y)) == y
    assert y["1"] == [1.0, "inf", "-inf", "nan"] and y["p"] == "a/b" and y["n"] is None
    assert y["o"] == repr(object)
