"""The Python examples of README.md and the book's intro page run as pasted (no undefined names)."""

import re
from pathlib import Path

import pytest
import torch
from conftest import REPO as ROOT


def python_blocks(path: Path) -> list[str]:
    """The ```python blocks of a Markdown file, in order."""
    return re.findall(r"^```python\n(.*?)^```", path.read_text(), re.S | re.M)


@pytest.mark.parametrize("doc", ["README.md", "book/intro.md"])
def test_first_python_example_runs_as_pasted(doc):
    blocks = python_blocks(ROOT / doc)
    assert blocks, f"{doc} has no ```python example"
    names: dict = {}
    torch.set_num_threads(1)
    exec(compile(blocks[0], doc, "exec"), names)  # a fresh namespace: nothing defined beforehand
    res = names["res"]
    n = res.attribution.shape[0]
    assert res.attribution.shape == (n, 64, 64) and n >= 1
    assert float(res.attribution.min()) >= 0.0 and float(res.attribution.max()) <= 1.0
