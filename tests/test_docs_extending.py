"""``docs/extending.md`` runs: every Python block of the page, in order, in one namespace (as a reader would
paste them), so the contracts it documents stay true."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from lightning_snn.functional.surrogates import SURROGATES

PAGE = Path(__file__).parents[1] / "docs" / "extending.md"

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Lightning: tiny loaders, few workers


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_every_example_of_the_extending_page_runs(monkeypatch):
    blocks = python_blocks(PAGE.read_text())
    assert len(blocks) >= 6
    module = types.ModuleType("extending_page")  # classes defined on the page are importable by path
    monkeypatch.setitem(sys.modules, module.__name__, module)
    registered = dict(SURROGATES)  # the page registers a surrogate: keep it out of the other tests
    try:
        for index, block in enumerate(blocks):
            code = compile(block, f"{PAGE.name}, block {index + 1}", "exec")
            exec(code, module.__dict__)
    finally:
        SURROGATES.clear()
        SURROGATES.update(registered)
