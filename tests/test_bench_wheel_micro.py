"""Smoke test: bench/wheel_micro.py still runs against the wheel's API (tiny N, no loop)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench import wheel_micro


@pytest.mark.parametrize(
    "measure",
    [
        pytest.param(lambda: wheel_micro.wheel_insert(300, 0.001, 64), id="wheel-insert"),
        pytest.param(lambda: wheel_micro.wheel_cancel(300, 0.001, 64), id="wheel-cancel"),
        pytest.param(lambda: wheel_micro.wheel_expire(300, 0.001, 64), id="wheel-expire"),
        pytest.param(lambda: wheel_micro.wheel_steady(300, 0.001, 64, 2.0), id="wheel-steady"),
        pytest.param(lambda: wheel_micro.wheel_bytes(300, 0.001, 64), id="wheel-bytes"),
        pytest.param(lambda: wheel_micro.heap_expire(300), id="heap-expire"),
        pytest.param(lambda: wheel_micro.heap_steady(300, 2.0), id="heap-steady"),
    ],
)
def test_each_measurement_returns_a_positive_figure(measure: Callable[[], float]) -> None:
    figure = measure()
    assert isinstance(figure, float)
    assert figure > 0
