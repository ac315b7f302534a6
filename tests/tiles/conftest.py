"""Every tile test starts and ends with the default epilogue (tests may switch it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from analogsim.tiles.io import get_epilogue, set_epilogue


@pytest.fixture(autouse=True)
def _restore_epilogue() -> Iterator[None]:
    before = get_epilogue()
    yield
    set_epilogue(before)
