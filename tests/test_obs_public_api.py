"""Public modules' surface: ``__all__`` lists exactly their public names."""

from __future__ import annotations

import importlib
import inspect

import pytest

# Where each module's code lives (kernel.http etc. re-export these: tests/test_layout.py).
MODULES = [
    "actors.console_pages",
    "kernel.admin.api_models",
    "kernel.admin.http",
    "kernel.admin.openapi",
    "kernel.console",
    "kernel.console.history",
    "kernel.console.html",
    "kernel.observe.logs",
    "kernel.observe.metrics",
    "kernel.observe.redaction",
    "kernel.retry",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_lists_the_public_names_defined_here(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert isinstance(exported, tuple)
    assert list(exported) == sorted(set(exported), key=exported.index)  # no duplicates
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ names missing {item}"
    defined = {
        n
        for n, obj in vars(module).items()
        if not n.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", None) == name
    }
    assert defined - set(exported) <= {"ApiError", "NoOptions"}, defined - set(exported)
