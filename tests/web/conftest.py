"""Fixtures of the live view's tests: `served`, a ServedRun (two paced sources of walkers, served on a free port)."""
from __future__ import annotations

import pytest

from served_run import ServedRun


@pytest.fixture
def served():
    with ServedRun() as run:
        yield run
