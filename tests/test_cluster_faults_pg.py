"""Cluster mode under pauses, skewed clocks and kills: real replica processes on the
machine's PostgreSQL (issue 13, "Done when").

Each test starts replicas of ``tests/cluster_replica_main.py`` (lease 2 s) on a schema of
its own; their jobs write fenced ``start`` / ``end`` rows (kept only while the run's claim
holds its fencing token). Real time is unavoidable here (processes, SIGSTOP, SIGKILL,
``faketime``); each test runs 15-25 s and its assertions only rest on what the database
recorded, so a slow machine makes runs late, not the test wrong.
"""

from __future__ import annotations

import asyncio
import glob
import itertools
import os
import signal
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kernel.distributed._pg import Database

from .pg_helpers import fresh_db

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
SECOND = timedelta(seconds=1)
LEASE = 2.0
TOLERANCE = timedelta(milliseconds=50)


def libfaketime() -> str:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1") +
                   glob.glob("/usr/lib/faketime/libfaketimeMT.so.1"))
    assert found, "libfaketime is needed (Debian package faketime, installed by .ci/run)"
    return found[0]


class Replicas:
    def __init__(self, db: Database, logs: Path) -> None:
        self.db = db
        self.logs = logs
        self.procs: dict[str, asyncio.subprocess.Process] = {}

    async def start(self, names: str, offsets: dict[str, str] | None = None) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for name in names:
            command = [sys.executable, "-m", "tests.cluster_replica_main", self.db.dsn,
                       self.db.schema, name, str(LEASE)]
            offset = (offsets or {}).get(name)
            child_env = env
            if offset is not None:
                # libfaketime preloaded into the replica itself (the ``faketime`` command
                # would run it as its child, out of reach of our signals). Only the wall
                # clock is skewed; the monotonic clock stays true.
                child_env = {**env, "LD_PRELOAD": libfaketime(), "FAKETIME": offset,
                             "DONT_FAKE_MONOTONIC": "1"}
            log = open(self.logs / f"{name}.log", "ab")  # noqa: ASYNC230
            self.procs[name] = await asyncio.create_subprocess_exec(
                *command, cwd=ROOT, env=child_env, stdout=asyncio.subprocess.PIPE, stderr=log,
            )
            log.close()
        for name in names:
            stdout = self.procs[name].stdout
            assert stdout is not None
            line = await asyncio.wait_for(stdout.readline(), 30)
            assert line == b"started\n", self.log_text()

    def send(self, name: str, sig: int) -> None:
        self.procs[name].send_signal(sig)

    async def stop(self, sig: int = signal.SIGTERM, names: str | None = None) -> None:
        for name in names or list(self.procs):
            proc = self.procs.pop(name)
            proc.send_signal(sig)
            await asyncio.wait_for(proc.wait(), 20)

    async def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            await proc.wait()
        self.procs.clear()

    def log_text(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-30000:]}" for p in
                         sorted(self.logs.glob("*.log")))


async def cluster(tmp_path: Path, scenario: Any) -> None:
    async with fresh_db() as db:
        await db.execute(
            "CREATE TABLE ran (job_id text NOT NULL, scheduled_at timestamptz NOT NULL, "
            "replica text NOT NULL, run_id text NOT NULL, attempt int NOT NULL, "
            "token bigint NOT NULL, phase text NOT NULL, db_at timestamptz NOT NULL)")
        group = Replicas(db, tmp_path)
        try:
            await scenario(db, group)
        except BaseException:
            print(group.log_text())
            raise
        finally:
            await group.kill_all()


async def rows(db: Database, job: str | None = None) -> list[Any]:
    return await db.fetch("SELECT * FROM ran WHERE $1::text IS NULL OR job_id = $1 "
                          "ORDER BY scheduled_at, db_at", job)


def completions_once(ran: list[Any]) -> None:
    """No scheduled time of any job completed twice (across attempts and replicas)."""
    ends = Counter((r["job_id"], r["scheduled_at"]) for r in ran if r["phase"] == "end")
    assert [k for k, n in ends.items() if n > 1] == []


async def no_false_interrupted(db: Database, ran: list[Any]) -> None:
    """No run recorded interrupted completed (its fenced end row would exist)."""
    interrupted = {r["run_id"] for r in await db.fetch(
        "SELECT record->>'run_id' AS run_id FROM failures "
        "WHERE record->>'exc_type' = 'Interrupted'")}
    ended = {r["run_id"] for r in ran if r["phase"] == "end"}
    assert interrupted & ended == set()


def contiguous(times: list[datetime]) -> None:
    assert times, "no runs"
    assert [b - a for a, b in itertools.pairwise(times)] == [SECOND] * (len(times) - 1)


async def in_flight_work(db: Database) -> tuple[str, datetime, str]:
    """A replica in the middle of a ``work`` run: (replica, scheduled time, run id)."""
    for _ in range(500):
        found = await db.fetch(
            "SELECT replica, scheduled_at, run_id FROM ran s WHERE job_id = 'work' AND "
            "phase = 'start' AND NOT EXISTS (SELECT 1 FROM ran e WHERE e.run_id = s.run_id "
            "AND e.phase = 'end') AND db_at > now() - interval '300 milliseconds'")
        if found:
            return found[0]["replica"], found[0]["scheduled_at"], found[0]["run_id"]
        await asyncio.sleep(0.01)
    raise AssertionError("no work run in progress within 5 s")


async def test_a_replica_paused_past_its_lease_completes_nothing_twice(tmp_path: Path) -> None:
    async def scenario(db: Database, group: Replicas) -> None:
        await group.start("abc")
        await asyncio.sleep(3)
        victim, paused_at, paused_run = await in_flight_work(db)
        group.send(victim, signal.SIGSTOP)
        await asyncio.sleep(3 * LEASE)  # well past the lease and a reaper pass
        group.send(victim, signal.SIGCONT)
        await asyncio.sleep(4)
        await group.stop()
        ran = await rows(db)
        completions_once(ran)
        await no_false_interrupted(db, ran)
        # The paused run was taken from it: recorded interrupted once (by a survivor),
        # its late end was fenced off, and the retry took a claim of its own (attempt 2,
        # a newer token) after the policy's 0.5 s.
        failures = await db.fetch(
            "SELECT record->>'run_id' AS run_id, record->>'exc_type' AS exc FROM failures "
            "WHERE job_id = 'work' AND (record->>'scheduled_at')::timestamptz = $1",
            paused_at)
        assert [(f["run_id"], f["exc"]) for f in failures] == [(paused_run, "Interrupted")]
        claim = (await db.fetch("SELECT * FROM claims WHERE job_id = 'work' AND "
                                "scheduled_at = $1", paused_at))[0]
        assert (claim["attempt"], claim["state"]) == (2, "succeeded"), dict(claim)
        at_time = [r for r in ran if r["scheduled_at"] == paused_at]
        assert [(r["attempt"], r["phase"]) for r in at_time] == [
            (1, "start"), (2, "start"), (2, "end")]
        assert at_time[1]["token"] > at_time[0]["token"]
        assert at_time[1]["replica"] != victim
        # Every tick time was decided once and ran at most once (the others went on while
        # it was stopped); one the paused replica had claimed but not started when it was
        # stopped is recorded interrupted (tick has no retry policy) and ran nowhere.
        ticks = [r for r in ran if r["job_id"] == "tick" and r["phase"] == "start"]
        assert len({r["scheduled_at"] for r in ticks}) == len(ticks)
        decided = await db.fetch("SELECT scheduled_at, state, replica FROM claims WHERE "
                                 "job_id = 'tick' ORDER BY scheduled_at")
        contiguous([r["scheduled_at"] for r in decided])
        started = {r["scheduled_at"] for r in ticks}
        assert {(r["state"], r["replica"]) for r in decided
                if r["scheduled_at"] not in started} <= {("interrupted", victim)}
        # After SIGCONT the paused replica either cancelled the run (its renewal found the
        # lease lost) or, if the body's own timer came first, had its outcome refused.
        text = (tmp_path / f"{victim}.log").read_text(errors="replace")
        assert f"{paused_run}) cancelled after" in text or \
            (f"run {paused_run} (scheduled" in text and "refused" in text), text

    await cluster(tmp_path, scenario)


@pytest.mark.parametrize("offsets", [{"b": "+5s", "c": "-5s"}, {"a": "+5s", "b": "+5s",
                                                                "c": "-5s"}],
                         ids=["one-ahead-one-behind", "two-ahead-one-behind"])
async def test_replicas_with_skewed_clocks_run_nothing_early_and_nothing_twice(
    tmp_path: Path, offsets: dict[str, str]
) -> None:
    async def scenario(db: Database, group: Replicas) -> None:
        await group.start("abc", offsets)
        await asyncio.sleep(8)
        await group.stop()
        ran = await rows(db)
        starts = [r for r in ran if r["phase"] == "start"]
        assert starts
        early = [dict(r) for r in starts if r["db_at"] < r["scheduled_at"] - TOLERANCE]
        assert early == []
        once = Counter((r["job_id"], r["scheduled_at"]) for r in starts)
        assert [k for k, n in once.items() if n > 1] == []
        completions_once(ran)
        # Every scheduled time since the job was stored was decided once (run, or skipped
        # by max_instances while a run of the job was live): no time fell between the
        # replicas. (A replica whose clock is behind may anchor the interval grid a few
        # seconds before the job's creation; those earlier times are not owed.)
        for job in ("tick", "work"):
            claimed = await db.fetch(
                "SELECT scheduled_at, replica, state, started_at FROM claims WHERE job_id = $1 "
                "AND scheduled_at >= (SELECT created_at FROM jobs WHERE id = $1) ORDER BY 1",
                job)
            decided = [r["scheduled_at"] for r in claimed]
            assert all(b - a == SECOND for a, b in itertools.pairwise(decided)), \
                " ".join(f"{r['scheduled_at']:%S}/{r['replica']}/{r['state']}" for r in claimed)
            assert decided, (job, [dict(r) for r in await db.fetch(
                "SELECT c.scheduled_at, c.replica, c.state, j.created_at FROM claims c "
                "JOIN jobs j ON j.id = c.job_id WHERE c.job_id = $1 ORDER BY 1", job)])

    await cluster(tmp_path, scenario)


async def test_a_killed_replica_hands_its_jobs_over_within_one_lease(tmp_path: Path) -> None:
    async def scenario(db: Database, group: Replicas) -> None:
        await group.start("abc")
        await asyncio.sleep(3)
        victim, killed_at, killed_run = await in_flight_work(db)
        killed = await db.fetchval("SELECT now()")
        await group.stop(signal.SIGKILL, victim)
        await asyncio.sleep(3 * LEASE)
        await group.stop()
        ran = await rows(db)
        completions_once(ran)
        await no_false_interrupted(db, ran)
        claim = (await db.fetch("SELECT * FROM claims WHERE job_id = 'work' AND "
                                "scheduled_at = $1", killed_at))[0]
        assert (claim["attempt"], claim["state"]) == (2, "succeeded"), dict(claim)
        retry = [r for r in ran if r["scheduled_at"] == killed_at and r["attempt"] == 2]
        # Handed over within one lease (+ the reaper's period and the 0.5 s retry delay).
        assert retry[0]["db_at"] - killed <= timedelta(seconds=LEASE + LEASE / 2 + 0.5 + 0.5)
        ticks = sorted(r["scheduled_at"] for r in ran if r["job_id"] == "tick"
                       and r["phase"] == "start")
        assert len(ticks) == len(set(ticks))
        decided = await db.fetch("SELECT scheduled_at, state, replica, run_id FROM claims "
                                 "WHERE job_id = 'tick' ORDER BY scheduled_at")
        contiguous([r["scheduled_at"] for r in decided])
        # A tick the victim had claimed but not started is interrupted; nothing else is.
        lost = [r for r in decided if r["scheduled_at"] not in set(ticks)]
        assert {(r["state"], r["replica"]) for r in lost} <= {("interrupted", victim)}
        assert {r["replica"] for r in ran if r["db_at"] > killed + SECOND} <= \
            set("abc") - {victim}
        failures = await db.fetch("SELECT record->>'run_id' AS run_id FROM failures")
        assert sorted(f["run_id"] for f in failures) == sorted(
            [killed_run, *(r["run_id"] for r in lost)])

    await cluster(tmp_path, scenario)
