"""lark_service's facade: SchedulerService from synchronous code and many threads, and the
dual-use task wrapper."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from kernel import JobLookupError
from lark_service.scheduler import SchedulerService
from lark_service.scheduler._dual import Finished, dual


def running(service: SchedulerService) -> bool:
    # A function, so that mypy does not keep a narrowed `service.running` across calls.
    return service.running


def test_jobs_added_before_start_begin_at_start() -> None:
    service = SchedulerService(timezone="UTC")
    service.add_interval_job(print, hours=1, job_id="early")
    assert not running(service)
    service.start()
    try:
        assert running(service)
        (job,) = service.get_jobs()
        assert job.id == "early"
        assert job.next_run_time is not None
    finally:
        service.shutdown()
    assert not running(service)


def test_start_and_shutdown_are_idempotent() -> None:
    ran = threading.Event()
    service = SchedulerService()
    service.add_interval_job(ran.set, hours=1, job_id="j")
    service.shutdown()  # never started: nothing to do
    assert not running(service)
    service.start()
    service.start()
    assert running(service)
    service.shutdown()
    service.shutdown()
    assert not running(service)
    with pytest.raises(RuntimeError, match="not started"):
        service.run_job("j")
    service.start()  # and it can start again, with its jobs
    try:
        assert running(service)
        assert [j.id for j in service.get_jobs()] == ["j"]
        service.run_job("j")
        assert ran.wait(5)
    finally:
        service.shutdown()
    assert not running(service)


def test_many_threads_add_and_remove_at_once() -> None:
    service = SchedulerService()
    service.start()
    try:
        def churn(n: int) -> None:
            service.add_interval_job(print, minutes=5, job_id=f"job-{n}")
            service.add_cron_job(print, cron_expression="0 3 * * *", job_id=f"cron-{n}")
            service.remove_job(f"job-{n}")

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(churn, range(200)))
        assert sorted(j.id for j in service.get_jobs()) == sorted(f"cron-{n}" for n in range(200))
    finally:
        service.shutdown(wait=False)


def test_run_job_from_another_thread_runs_the_job() -> None:
    ran = threading.Event()
    service = SchedulerService()
    service.add_interval_job(ran.set, hours=1, job_id="manual")
    service.start()
    try:
        run_id = service.run_job("manual")
        assert run_id
        assert ran.wait(5)
    finally:
        service.shutdown()


def test_unknown_ids_and_a_stopped_service_are_clear_errors() -> None:
    service = SchedulerService()
    with pytest.raises(JobLookupError, match="no job with id 'nope'"):
        service.remove_job("nope")
    service.add_interval_job(print, hours=1, job_id="x")
    with pytest.raises(RuntimeError, match=r"not started; call scheduler_service\.start\(\)"):
        service.run_job("x")


def test_a_job_cannot_block_on_its_own_loop() -> None:
    errors: list[str] = []
    done = threading.Event()
    service = SchedulerService()

    async def job() -> None:
        try:
            service.run_job("inner")
        except RuntimeError as exc:
            errors.append(str(exc))
        done.set()

    service.add_interval_job(job, hours=1, job_id="outer")
    service.add_interval_job(print, hours=1, job_id="inner")
    service.start()
    try:
        service.run_job("outer")
        assert done.wait(5)
    finally:
        service.shutdown()
    assert len(errors) == 1
    assert "cannot be made from a job running on that loop" in errors[0]


# -- dual-use tasks ------------------------------------------------------------------------


calls: list[int] = []


@dual
async def double(x: int) -> int:
    calls.append(x)
    return 2 * x


@dual
async def broken() -> None:
    raise ValueError("the task failed")


def test_a_plain_call_runs_the_task_at_once() -> None:
    calls.clear()
    answer = double(3)
    assert calls == [3]
    assert isinstance(answer, Finished)
    assert answer.result == 6


def test_asyncio_run_of_the_call_gives_the_result_and_runs_once() -> None:
    calls.clear()
    assert asyncio.run(double(4)) == 8
    assert calls == [4]


def test_inside_a_loop_the_call_is_an_ordinary_coroutine() -> None:
    calls.clear()

    async def main() -> int:
        pending = double(5)
        assert calls == []  # nothing ran yet: it runs when awaited, on this loop
        return await pending

    assert asyncio.run(main()) == 10
    assert calls == [5]


def test_a_plain_call_raises_the_task_error() -> None:
    with pytest.raises(ValueError, match="the task failed"):
        _ = broken()


threads: list[str] = []
ran_where = threading.Event()


@dual
async def where() -> None:
    threads.append(threading.current_thread().name)
    ran_where.set()


def test_the_scheduler_runs_the_coroutine_function_on_its_loop() -> None:
    # Registering the blocking wrapper would run it in a worker thread with a loop of its own.
    service = SchedulerService()
    service.add_interval_job(where, hours=1, job_id="where")
    service.start()
    try:
        service.run_job("where")
        assert ran_where.wait(5)
    finally:
        service.shutdown()
    assert threads == ["scheduler-loop"]
