"""bench.profile_burst: a small burst, profiled and timed, prints what it measured."""

from __future__ import annotations

import pytest

from bench import profile_burst


@pytest.mark.parametrize("engine", ["kernel", "floor"])
def test_profile_burst_prints_the_last_start_and_the_top_of_the_profile(
    engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert profile_burst.main(["--n", "300", "--engine", engine, "--top", "5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{engine}: last of 300 starts ")
    assert "(profiled)" in out
    assert "Ordered by: internal time" in out
    assert "Ordered by: cumulative time" in out


def test_no_profile_only_times_the_burst(capsys: pytest.CaptureFixture[str]) -> None:
    assert profile_burst.main(["--n", "300", "--no-profile"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("kernel: last of 300 starts ")
    assert "Ordered by" not in out
