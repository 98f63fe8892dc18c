"""No cron input raises anything but InvalidJobError, and what is accepted can be asked.

Fuzzed three ways (any text, text from cron's own alphabet, and five fields of plausible
and implausible tokens), plus a table of inputs known to trip parsers. An accepted
expression must then answer ``next_fire_time`` and ``explain`` without raising.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel.cron_explain import explain
from kernel.errors import InvalidJobError
from kernel.triggers import CronTrigger

AFTER = datetime(2024, 11, 3, 5, 30, tzinfo=UTC)  # inside New York's repeated hour
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(expression: Any) -> None:
    """Refused with InvalidJobError, or accepted and usable; nothing else."""
    try:
        trigger = CronTrigger(expression, "America/New_York")
    except InvalidJobError:
        # The same refusal through explain, and it names the expression.
        with pytest.raises(InvalidJobError, match=r"^cron[ _]expression"):
            explain(expression, "America/New_York", 2, after=AFTER)
        return
    fire = trigger.next_fire_time(AFTER)
    assert fire is None or fire > AFTER
    result = explain(expression, "America/New_York", 2, after=AFTER)
    assert result.description


CRON_ALPHABET = "0123456789*,-/ \t@LW#?HJFMASONDjfmasondTUEWHRIhuerisatcuvgpbl"

NUMBERS = st.one_of(
    st.integers(0, 61).map(str),
    st.integers(-5, 10**30).map(str),
    st.integers(0, 59).map(lambda n: f"00{n}"),
    st.just("9" * 5000),  # longer than int() reads
)
NAMES = st.sampled_from(
    ["SUN", "mon", "Tue", "WED", "thu", "FRI", "sat", "JAN", "feb", "Dec", "MONDAY", "L", "W",
     "LW", "5L", "15W", "MON#2", "?", "H", "", "x", "7", "0", "ü", "٣", "１"]
)
VALUES = st.one_of(NUMBERS, NAMES)


@st.composite
def items(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 6))
    step = draw(st.one_of(NUMBERS, st.just(""), st.just("x")))
    if kind == 0:
        return "*"
    if kind == 1:
        return f"*/{step}"
    if kind == 2:
        return draw(VALUES)
    if kind == 3:
        return f"{draw(VALUES)}-{draw(VALUES)}"
    if kind == 4:
        return f"{draw(VALUES)}-{draw(VALUES)}/{step}"
    if kind == 5:
        return f"{draw(VALUES)}/{step}"
    return draw(st.text(CRON_ALPHABET, max_size=6))


FIELDS = st.lists(items(), min_size=1, max_size=4).map(",".join)
EXPRESSIONS = st.one_of(
    st.lists(FIELDS, min_size=5, max_size=5).map(" ".join),
    st.lists(FIELDS, min_size=0, max_size=7).map(" ".join),
    st.sampled_from(["@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@reboot", "@"]),
)


@FUZZ
@given(st.text(max_size=40))
def test_any_text(expression: str) -> None:
    check(expression)


@FUZZ
@given(st.text(CRON_ALPHABET, max_size=40))
def test_text_from_crons_alphabet(expression: str) -> None:
    check(expression)


@settings(FUZZ, max_examples=200)  # the accepted ones run explain(): the slow part
@given(EXPRESSIONS)
def test_five_fields_of_tokens(expression: str) -> None:
    check(expression)


@FUZZ
@given(st.one_of(st.none(), st.integers(), st.floats(), st.binary(), st.lists(st.text()),
                 st.dictionaries(st.text(), st.text())))
def test_not_a_string(value: Any) -> None:
    with pytest.raises(InvalidJobError) as info:
        CronTrigger(value)
    assert "cron_expression must be a string like '0 9 * * *'" in str(info.value)


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("9" * 5000 + " * * * *", id="huge-number"),
        pytest.param("*/" + "9" * 5000 + " * * * *", id="huge-step"),
        pytest.param("0 0 * * " + "1," * 5000 + "1", id="long-list"),
        pytest.param("0 0 * * 0-7/" + "0" * 40 + "1", id="leading-zeros-step"),
        pytest.param("0" * 40 + "5 * * * *", id="leading-zeros-value"),
        pytest.param("\x00 * * * *", id="nul"),
        pytest.param("0 9 * * *\n0 10 * * *", id="two-lines"),
        pytest.param("0\u20039 * * *", id="em-space"),
        pytest.param("@", id="bare-at"),
        pytest.param("@@daily", id="double-at"),
        pytest.param("@daily *", id="macro-and-field"),
        pytest.param("*/ * * * *", id="empty-step"),
        pytest.param("- * * * *", id="bare-dash"),
        pytest.param("/5 * * * *", id="bare-slash"),
        pytest.param("*-5 * * * *", id="star-range"),
        pytest.param("1-*/2 * * * *", id="range-to-star"),
        pytest.param("0 0 29 2 */3", id="leap-day-and-weekday"),
        pytest.param("59 23 31 12 *", id="last-minute-of-the-year"),
        pytest.param("0 0 * * ٣", id="arabic-digit"),
    ],
)
def test_known_troublemakers(expression: str) -> None:
    check(expression)
