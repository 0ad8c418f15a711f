"""Every ``Examples`` block of the package's docstrings runs as a doctest, on the embedded model.

The examples may use ``model`` (the embedded SmallVGG, eval mode), ``x`` (two normalised held-out
shapes, ``(2, 3, 64, 64)``), ``classes`` (its predicted classes), ``attributions`` (a ``(2, 64, 64)``
map), ``masks`` (their object masks), ``torch`` and ``np``. Examples that need data or hardware a clone does not have say
``# doctest: +SKIP``.
"""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest
import torch

import invnb

MODULES = sorted(m.name for m in pkgutil.walk_packages(invnb.__path__, "invnb.")
                 if not m.name.endswith("__main__"))


@pytest.fixture(scope="module")
def namespace():
    from invnb.datasets import make_shapes, normalize
    from invnb.models import load_embedded_model

    torch.set_num_threads(1)
    model = load_embedded_model()
    data = make_shapes(2, seed=1)
    x = normalize(data.images)
    with torch.no_grad():
        classes = model(x).argmax(1)
    attributions = torch.rand(2, 64, 64, generator=torch.Generator().manual_seed(0))
    return {"model": model, "x": x, "classes": classes, "attributions": attributions, "masks": data.masks,
            "torch": torch, "np": np}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, namespace):
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        if test.examples:
            test.globs.update(namespace)
            runner.run(test, out=lambda s: None)
    failed, attempted = runner.summarize(verbose=False)
    if failed:
        report = []
        for test in tests:  # rerun to collect the messages of the failing ones
            r = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
            out = []
            test.globs.update(namespace)
            r.run(test, out=out.append)
            if r.failures:
                report.append("".join(out))
        pytest.fail(f"{failed} of {attempted} examples of {name} fail:\n" + "\n".join(report)[:6000])


def test_the_engine_and_the_metrics_have_runnable_examples():
    """The names most people call first show a runnable example (not only skipped ones)."""
    from invnb.eval import deletion_curve
    from invnb.inverse import LayerwiseInverse, attribution_map

    for obj in (LayerwiseInverse, attribution_map, deletion_curve):
        examples = [e for t in doctest.DocTestFinder().find(obj) for e in t.examples]
        assert any(not e.options.get(doctest.SKIP) for e in examples), obj
