"""The timer wheel's contract: exact expiry sets and order, cancels, next_deadline, no spin."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from kernel.engine.wheel import TimerWheel, WheelEntry

# A small wheel (1 s ticks, 4 slots: level 0 spans 4 s, level 1 16 s, level 2 64 s) makes
# cascades, level growth and slot boundaries easy to hit with small numbers.
SMALL = {"tick": 1.0, "wheel_size": 4}


def drive(wheel: TimerWheel[str], until: float, now: float) -> list[tuple[float, list[str]]]:
    """Call expire() the way the kernel does: at each next_deadline() up to ``until``."""
    calls: list[tuple[float, list[str]]] = []
    for _ in range(10_000):
        nxt = wheel.next_deadline()
        if nxt is None or nxt > until:
            break
        now = max(now, nxt)
        calls.append((now, wheel.expire(now)))
    else:
        raise AssertionError("next_deadline() kept the driver spinning")
    now = max(now, until)
    calls.append((now, wheel.expire(now)))
    return calls


def fired(calls: list[tuple[float, list[str]]]) -> list[str]:
    return [item for _, items in calls for item in items]


@pytest.mark.parametrize(
    ("params", "deadlines", "expected"),
    [
        pytest.param({}, [3.0, 1.0, 2.0], ["1.0", "2.0", "3.0"], id="level-0-scrambled"),
        pytest.param(
            SMALL,
            [50.0, 3.5, 17.25, 0.5, 200.0, 5.0],
            ["0.5", "3.5", "5.0", "17.25", "50.0", "200.0"],
            id="across-levels",
        ),
        pytest.param(
            {"tick": 0.001, "wheel_size": 256},
            [0.0105, 0.0101, 0.0109, 0.0102],
            ["0.0101", "0.0102", "0.0105", "0.0109"],
            id="one-slot-many-deadlines",
        ),
        pytest.param(
            {},
            [86400.0 * 365 * 10, 1.0, 3600.0 * 25],
            ["1.0", "90000.0", "315360000.0"],
            id="ten-years-ahead",
        ),
    ],
)
def test_expire_returns_in_deadline_order(
    params: dict[str, float], deadlines: list[float], expected: list[str]
) -> None:
    wheel: TimerWheel[str] = TimerWheel(0.0, **params)  # type: ignore[arg-type]
    for deadline in deadlines:
        wheel.insert(deadline, str(deadline))
    assert fired(drive(wheel, max(deadlines), 0.0)) == expected
    assert len(wheel) == 0
    assert wheel.next_deadline() is None


def test_ties_expire_in_insertion_order_even_across_a_cascade() -> None:
    wheel: TimerWheel[str] = TimerWheel(0.0, **SMALL)  # type: ignore[arg-type]
    wheel.insert(6.5, "far-first")  # beyond level 0 (4 s): goes to level 1
    wheel.insert(6.5, "far-second")
    assert wheel.expire(3.0) == []
    wheel.insert(6.5, "near-third")  # now within level 0: lands there directly
    wheel.insert(6.2, "near-earlier")
    assert fired(drive(wheel, 10.0, 3.0)) == [
        "near-earlier",
        "far-first",
        "far-second",
        "near-third",
    ]


def test_a_cascade_into_a_slot_lowers_its_wake_to_the_earliest_deadline() -> None:
    wheel: TimerWheel[str] = TimerWheel(0.0, **SMALL)  # type: ignore[arg-type]
    wheel.insert(9.2, "cascaded")  # 9 ticks ahead: level 1, slot [8, 12)
    assert wheel.expire(6.0) == []
    wheel.insert(9.7, "direct")  # 3 ticks ahead now: level 0, slot 9
    assert wheel.next_deadline() == 8.0
    assert wheel.expire(8.0) == []
    assert wheel.next_deadline() == 9.2
    assert wheel.expire(9.2) == ["cascaded"]
    assert wheel.next_deadline() == 9.7


def test_a_late_expire_returns_everything_due_in_order() -> None:
    wheel: TimerWheel[str] = TimerWheel(0.0, **SMALL)  # type: ignore[arg-type]
    for deadline in [70.0, 5.0, 20.0, 5.0, 1.0]:
        wheel.insert(deadline, str(deadline))
    assert wheel.expire(1000.0) == ["1.0", "5.0", "5.0", "20.0", "70.0"]


@pytest.mark.parametrize(
    ("deadline", "expected_next"),
    [
        pytest.param(0.0123456, 0.0123456, id="level-0-exact-not-tick-aligned"),
        pytest.param(0.5, 0.5, id="level-0"),
        pytest.param(10.0, 8.0, id="level-1-slot-start"),
        pytest.param(100.0, 64.0, id="level-2-slot-start"),
    ],
)
def test_next_deadline(deadline: float, expected_next: float) -> None:
    wheel: TimerWheel[str] = TimerWheel(0.0, **SMALL)  # type: ignore[arg-type]
    assert wheel.next_deadline() is None
    wheel.insert(deadline, "x")
    assert wheel.next_deadline() == expected_next


def test_expire_never_returns_a_later_deadline_in_the_same_slot() -> None:
    wheel: TimerWheel[str] = TimerWheel(0.0, tick=0.001)
    for deadline in (1.0001, 1.0009, 1.0005):
        wheel.insert(deadline, str(deadline))
    assert wheel.expire(1.0005) == ["1.0001", "1.0005"]
    assert wheel.next_deadline() == 1.0009
    assert wheel.expire(1.00089) == []
    assert wheel.expire(1.0009) == ["1.0009"]


@pytest.mark.parametrize(
    ("deadlines", "now"),
    [
        pytest.param([1.0001, 1.0009], 1.0005, id="inside-a-level-0-slot"),
        pytest.param([10.0, 30.0], 9.0, id="inside-a-level-1-slot"),
        pytest.param([10.0, 30.0], 8.0, id="at-a-level-1-slot-start"),
        pytest.param([100.0], 64.0, id="at-a-level-2-slot-start"),
        pytest.param([5.0], 5.0, id="exactly-at-a-deadline"),
    ],
)
def test_no_spin_after_expire(deadlines: list[float], now: float) -> None:
    wheel: TimerWheel[str] = TimerWheel(0.0, **SMALL)  # type: ignore[arg-type]
    for deadline in deadlines:
        wheel.insert(deadline, str(deadline))
    wheel.expire(now)
    nxt = wheel.next_deadline()
    assert nxt is None or nxt > now


def test_an_earlier_now_than_last_time_returns_only_what_is_due_by_it() -> None:
    wheel: TimerWheel[str] = TimerWheel(0.0)
    for deadline in (5.0, 7.0, 9.0):
        wheel.insert(deadline, str(deadline))
    assert wheel.expire(6.0) == ["5.0"]
    wheel.insert(5.5, "5.5")
    assert wheel.expire(5.9) == ["5.5"]
    assert wheel.expire(7.0) == ["7.0"]
    assert len(wheel) == 1


def test_past_deadline_is_returned_by_the_next_expire() -> None:
    wheel: TimerWheel[str] = TimerWheel(0.0)
    wheel.insert(12.0, "later")
    assert wheel.expire(10.0) == []
    wheel.insert(3.0, "past")
    wheel.insert(-1.0, "before-start")
    assert wheel.next_deadline() == -1.0
    assert wheel.expire(10.0) == ["before-start", "past"]
    assert wheel.next_deadline() == 12.0


@pytest.mark.parametrize("when", ["before-expiry", "after-expiry"])
def test_cancel(when: str) -> None:
    wheel: TimerWheel[str] = TimerWheel(0.0, **SMALL)  # type: ignore[arg-type]
    entry = wheel.insert(10.0, "x")
    other = wheel.insert(10.0, "y")
    assert isinstance(entry, WheelEntry)
    assert (entry.deadline, entry.item, entry.pending) == (10.0, "x", True)
    if when == "before-expiry":
        assert wheel.cancel(entry) is True
        assert (entry.pending, len(wheel)) == (False, 1)
        assert wheel.cancel(entry) is False
        assert wheel.expire(10.0) == ["y"]
    else:
        assert wheel.expire(10.0) == ["x", "y"]
        assert wheel.cancel(entry) is False
    assert (entry.pending, other.pending, len(wheel)) == (False, False, 0)


def test_cancelling_everything_leaves_nothing_to_wake_for() -> None:
    wheel: TimerWheel[int] = TimerWheel(0.0, **SMALL)  # type: ignore[arg-type]
    entries = [wheel.insert(float(d), d) for d in range(0, 300, 7)]
    for entry in entries:
        assert wheel.cancel(entry) is True
    assert (len(wheel), wheel.next_deadline()) == (0, None)
    assert wheel.expire(1e6) == []


def test_churn_does_not_grow_a_bucket_without_bound() -> None:
    wheel: TimerWheel[int] = TimerWheel(0.0)
    keep = wheel.insert(3600.0, -1)
    for i in range(10_000):
        wheel.cancel(wheel.insert(3600.0 + i * 1e-6, i))
    bucket = keep._bucket
    assert bucket is not None
    assert len(bucket.entries) <= 20
    assert wheel.expire(3601.0) == [-1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param({"deadline": math.inf}, "deadline inf: must be a finite", id="inf"),
        pytest.param({"deadline": math.nan}, "deadline nan: must be a finite", id="nan"),
    ],
)
def test_insert_refuses_non_finite_deadlines(args: dict[str, float], message: str) -> None:
    wheel: TimerWheel[str] = TimerWheel(0.0)
    with pytest.raises(ValueError, match=message):
        wheel.insert(args["deadline"], "x")
    assert len(wheel) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"start": math.nan}, "start nan", id="start-nan"),
        pytest.param({"start": 0.0, "tick": 0.0}, "tick 0.0: must be a positive", id="tick-0"),
        pytest.param({"start": 0.0, "tick": -1.0}, "tick -1.0", id="tick-negative"),
        pytest.param({"start": 0.0, "wheel_size": 1}, "wheel_size 1: must be at least 2", id="s1"),
    ],
)
def test_constructor_refuses_bad_parameters(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TimerWheel(**kwargs)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    start=st.floats(-1e9, 1e9, allow_nan=False),
    tick=st.sampled_from([1e-3, 1e-4, 0.3, 1.0, 7.0]),
    k=st.integers(1, 10**12),
)
def test_slot_start_is_exactly_the_first_time_in_the_slot(
    start: float, tick: float, k: int
) -> None:
    wheel: TimerWheel[str] = TimerWheel(start, tick=tick)
    t = wheel._tick_start(k)
    assert int((t - start) / tick) >= k
    assert int((math.nextafter(t, -math.inf) - start) / tick) < k


@settings(max_examples=1000, deadline=None)
@given(
    size=st.integers(2, 5),
    ops=st.lists(
        st.tuples(st.sampled_from(["insert", "insert", "cancel", "step"]), st.integers(0, 40)),
        max_size=40,
    ),
)
def test_dense_quarter_tick_schedules_match_the_model(
    size: int, ops: list[tuple[str, int]]
) -> None:
    """Deadlines on a quarter-tick grid a few slots ahead: ties, shared slots, cascades."""
    wheel: TimerWheel[int] = TimerWheel(0.0, tick=1.0, wheel_size=size)
    now = 0.0
    handles: list[WheelEntry[int]] = []
    pending: dict[int, float] = {}
    for op, n in ops:
        if op == "insert":
            pending[len(handles)] = now + n / 4 - 1
            handles.append(wheel.insert(now + n / 4 - 1, len(handles)))
        elif op == "cancel" and handles:
            seq = n % len(handles)
            assert wheel.cancel(handles[seq]) is (pending.pop(seq, None) is not None)
        else:
            now += n / 8
            due = sorted((d, s) for s, d in pending.items() if d <= now)
            assert wheel.expire(now) == [s for _, s in due]
            for _, s in due:
                del pending[s]
        nxt = wheel.next_deadline()
        assert len(wheel) == len(pending)
        if pending:
            assert nxt is not None
            assert nxt <= min(pending.values())
        if op == "step":
            assert nxt is None or nxt > now


class WheelMachine(RuleBasedStateMachine):
    """Random inserts, cancels and advances against a model of what must fire when."""

    entries = Bundle("entries")

    def __init__(self) -> None:
        super().__init__()
        self.wheel: TimerWheel[int] = TimerWheel(0.0)
        self.now = 0.0
        self.tick = 1.0
        self.pending: dict[int, float] = {}  # insertion number -> deadline
        self.handles: dict[int, WheelEntry[int]] = {}
        self.used: list[float] = [0.0]
        self.seq = 0

    @initialize(
        start=st.sampled_from([0.0, 1234.5678, 1e6 + 0.1]),
        tick=st.sampled_from([0.001, 0.25, 1.0]),
        size=st.sampled_from([2, 3, 4, 16, 256]),
    )
    def setup(self, start: float, tick: float, size: int) -> None:
        self.wheel = TimerWheel(start, tick=tick, wheel_size=size)
        self.now = start
        self.tick = tick
        self.used = [start]

    def _check_expire(self, now: float) -> None:
        got = self.wheel.expire(now)
        due = sorted((d, s) for s, d in self.pending.items() if d <= now)
        assert got == [s for _, s in due]
        for _, s in due:
            del self.pending[s]
        nxt = self.wheel.next_deadline()
        assert nxt is None or nxt > now, "next_deadline() would make the caller spin"

    @rule(
        target=entries,
        offset=st.one_of(
            # Quarter ticks: several distinct deadlines share a slot.
            st.integers(-12, 1200).map(lambda quarters: quarters / 4),
            st.floats(-5, 5000, allow_nan=False),
            st.floats(0, 1e9, allow_nan=False),
        ),
        scale=st.sampled_from(["ticks", "seconds"]),
        reuse=st.integers(0, 3),
    )
    def insert(self, offset: float, scale: str, reuse: int) -> int:
        if reuse <= 1:
            # A deadline seen before (a tie), or a fraction of a tick from one (a shared slot).
            deadline = self.used[-1 - (int(abs(offset)) % len(self.used))]
            if reuse == 1:
                deadline += self.tick * (offset % 1.0)
        else:
            deadline = self.now + (offset * self.tick if scale == "ticks" else offset)
            self.used.append(deadline)
        return self._insert(deadline)

    def _insert(self, deadline: float) -> int:
        seq = self.seq
        self.seq += 1
        self.handles[seq] = self.wheel.insert(deadline, seq)
        self.pending[seq] = deadline
        return seq

    @rule(target=entries, quarters=st.integers(-4, 80))
    def insert_near(self, quarters: int) -> int:
        # Dense deadlines a few slots ahead, where level 0 and level 1 overlap.
        return self._insert(self.now + quarters * self.tick / 4)

    @rule(seq=consumes(entries))
    def cancel(self, seq: int) -> None:
        was_pending = seq in self.pending
        assert self.wheel.cancel(self.handles[seq]) is was_pending
        self.pending.pop(seq, None)
        assert self.handles[seq].pending is False

    @rule(
        delta=st.one_of(st.floats(0, 20, allow_nan=False), st.floats(0, 1e9, allow_nan=False)),
        scale=st.sampled_from(["ticks", "seconds"]),
    )
    def advance_like_the_kernel(self, delta: float, scale: str) -> None:
        target = self.now + (delta * self.tick if scale == "ticks" else delta)
        for _ in range(100_000):
            nxt = self.wheel.next_deadline()
            if nxt is None or nxt > target:
                break
            self.now = max(self.now, nxt)
            self._check_expire(self.now)
        else:
            raise AssertionError("the driver loop did not converge")
        self.now = target
        self._check_expire(target)

    @rule(quarters=st.integers(0, 16))
    def step(self, quarters: int) -> None:
        self.now += quarters * self.tick / 4
        self._check_expire(self.now)

    @rule(delta=st.floats(0, 1e7, allow_nan=False))
    def jump(self, delta: float) -> None:
        self.now += delta
        self._check_expire(self.now)

    @invariant()
    def counts_and_next_deadline_match_the_model(self) -> None:
        assert len(self.wheel) == len(self.pending)
        nxt = self.wheel.next_deadline()
        # Never later than the earliest pending deadline (cancels may leave it earlier).
        if self.pending:
            assert nxt is not None
            assert nxt <= min(self.pending.values())


TestWheelMachine = WheelMachine.TestCase
TestWheelMachine.settings = settings(max_examples=200, stateful_step_count=60, deadline=None)


@pytest.mark.parametrize(
    ("start", "tick", "k"),
    [
        pytest.param(-1e9, 1.0, 10**9, id="slot-start-at-zero-far-from-start"),
        pytest.param(-1e9, 1e-4, 10**13, id="slot-start-near-zero-fine-tick"),
        pytest.param(12345.678, 1e-3, 7, id="ordinary"),
    ],
)
def test_slot_start_is_found_where_one_ulp_of_it_moves_nothing(
    start: float, tick: float, k: int
) -> None:
    # Near zero a time's ulp is far finer than the start's: stepping one ulp at a time
    # would take ~1e16 steps (hypothesis found start=-1e9 hanging the suite).
    t = TimerWheel(start, tick=tick)._tick_start(k)
    assert int((t - start) / tick) >= k
    assert int((math.nextafter(t, -math.inf) - start) / tick) < k
