"""SchedulerMetrics at scale: per-job or all-jobs histograms, bytes per job, and scrapes
written a slice at a time with the event loop free in between (issue 17).

How long a scrape stalls the loop is measured in bench/ (steady-scrape), not here: these
tests check what is written and that the loop gets control back between slices."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aioprometheus.collectors import Counter, Registry

from kernel.events import Event, JobAdded, JobRemoved, RunFailed, RunStarted, RunSucceeded
from kernel.metrics import DEFAULT_PER_JOB_HISTOGRAMS, SchedulerMetrics, chunked
from kernel.observe._exposition import CHUNK
from tests.promtext import parse, series, value

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
HISTOGRAMS = ("scheduled_task_duration_seconds", "scheduled_task_lateness_seconds")


def runs(job: str, *, lateness: float, duration: float, ok: bool = True) -> list[Event]:
    start = RunStarted(
        job_id=job, scheduled_at=T0, run_id="r", started_at=T0, lateness=lateness
    )
    if ok:
        return [
            start,
            RunSucceeded(
                job_id=job, scheduled_at=T0, run_id="r", started_at=T0, duration=duration
            ),
        ]
    end = RunFailed(
        job_id=job,
        scheduled_at=T0,
        run_id="r",
        started_at=T0,
        duration=duration,
        exc_type="RuntimeError",
        message="boom",
        traceback="Traceback ...",
    )
    return [start, end]


def fed(metrics: SchedulerMetrics, jobs: int) -> SchedulerMetrics:
    """Job i: one run i ms late that took i/10 s; every third one failed."""
    for i in range(jobs):
        for event in runs(f"job{i}", lateness=i / 1000, duration=i / 10, ok=i % 3 != 0):
            metrics(event)
    return metrics


def histogram_labels(text: str) -> set[tuple[tuple[str, str], ...]]:
    samples = parse(text)
    return {
        tuple(pair for pair in labels if pair[0] != "le")
        for name in HISTOGRAMS
        for suffix in ("_bucket", "_sum", "_count")
        for labels in series(samples, name + suffix)
    }


@pytest.mark.parametrize(
    ("jobs", "limit", "per_job"),
    [
        pytest.param(3, 3, True, id="at-the-limit-per-job"),
        pytest.param(4, 3, False, id="above-the-limit-all-jobs"),
        pytest.param(1, 0, False, id="zero-means-always-all-jobs"),
        pytest.param(50, DEFAULT_PER_JOB_HISTOGRAMS, True, id="default-limit"),
    ],
)
def test_histograms_per_job_up_to_the_limit_then_one_of_every_job(
    jobs: int, limit: int, per_job: bool
) -> None:
    text = fed(SchedulerMetrics(per_job_histograms=limit), jobs).render().decode()
    expected = {(("task_name", f"job{i}"),) for i in range(jobs)} if per_job else {()}
    assert histogram_labels(text) == expected
    samples = parse(text)
    # Counters and gauges stay per job either way.
    assert len(series(samples, "scheduled_task_executions_total")) == 2 * jobs


def test_the_all_jobs_histogram_is_the_sum_of_the_per_job_ones() -> None:
    jobs = 40
    per_job = parse(fed(SchedulerMetrics(), jobs).render().decode())
    together = parse(fed(SchedulerMetrics(per_job_histograms=0), jobs).render().decode())
    for name in HISTOGRAMS:
        for (metric, labels), total in together.items():
            if not metric.startswith(name):
                continue
            summed = sum(
                v
                for (m, other), v in per_job.items()
                if m == metric and [p for p in other if p[0] != "task_name"] == list(labels)
            )
            assert total == pytest.approx(summed), (metric, labels)
        assert value(together, f"{name}_count") == jobs
        assert value(together, f"{name}_bucket", le="+Inf") == jobs


@pytest.mark.parametrize(
    ("limit", "job_id", "most"),
    [
        # The four built-in jobs; cleanup_expired_tokens (22 characters) is the longest id.
        pytest.param(DEFAULT_PER_JOB_HISTOGRAMS, "cleanup_expired_tokens", 2048, id="per-job"),
        pytest.param(DEFAULT_PER_JOB_HISTOGRAMS, "sync_user_info", 2048, id="per-job-short"),
        pytest.param(0, "cleanup_expired_tokens", 1024, id="all-jobs"),
    ],
)
def test_a_job_costs_at_most_2_kb_of_exposition(limit: int, job_id: str, most: int) -> None:
    def size(jobs: int) -> int:
        metrics = SchedulerMetrics(version="1.0", per_job_histograms=limit)
        for i in range(jobs):
            name = f"{job_id}{i:04d}"[-len(job_id) :]  # same length, distinct
            metrics(JobAdded(job_id=name, scheduled_at=T0 + timedelta(seconds=0.123456)))
            # Long values: big counters, a float sum with all its digits, both timestamps.
            for _ in range(3):
                for event in runs(name, lateness=1 / 3, duration=12345.678901234):
                    metrics(event)
            series_ = metrics._jobs[name]
            series_.success = series_.failure = 10**9
        return len(metrics.render())

    per_job = (size(20) - size(0)) / 20
    assert per_job <= most


def test_names_and_labels_stay_the_seeds_in_both_forms() -> None:
    for limit in (DEFAULT_PER_JOB_HISTOGRAMS, 0):
        samples = parse(fed(SchedulerMetrics(per_job_histograms=limit), 2).render().decode())
        assert value(
            samples, "scheduled_task_executions_total", status="failure", task_name="job0"
        ) == 1
        assert {name for name, _ in samples} >= {
            "scheduled_task_duration_seconds_bucket",
            "scheduled_task_duration_seconds_sum",
            "scheduled_task_duration_seconds_count",
        }


@pytest.mark.parametrize(
    ("jobs", "limit"),
    [
        pytest.param(95, 0, id="all-jobs-histograms-10-jobs-a-slice"),
        # Per-job histograms: a job writes ~3x the lines, a slice holds a third as many.
        pytest.param(30, 1000, id="per-job-histograms-3-jobs-a-slice"),
    ],
)
async def test_scrape_gives_the_loop_back_between_slices(jobs: int, limit: int) -> None:
    metrics = fed(SchedulerMetrics(jobs_per_slice=10, per_job_histograms=limit), jobs)
    ticks = 0
    loop = asyncio.get_running_loop()

    def tick() -> None:
        nonlocal ticks
        ticks += 1
        handle[0] = loop.call_soon(tick)

    handle = [loop.call_soon(tick)]
    try:
        body = b"".join(await metrics.scrape())
    finally:
        handle[0].cancel()
    # 10 slices: the loop ran other callbacks between each two.
    assert ticks >= 10
    assert body == metrics.render()


async def test_a_large_answer_is_sent_in_chunks_of_about_64_kb() -> None:
    metrics = fed(SchedulerMetrics(), 600)  # ~1 MB with per-job histograms
    chunks = list(chunked(await metrics.scrape()))
    assert len(chunks) >= 10
    # Whole pieces, each at most one slice of one family: never far above 64 KB.
    assert min(map(len, chunks[:-1])) >= CHUNK
    assert max(map(len, chunks)) < 2 * CHUNK
    assert b"".join(chunks) == metrics.render()


@pytest.mark.parametrize(
    ("sizes", "size", "expected"),
    [
        pytest.param([3, 3, 3], 4, [6, 3], id="last-shorter"),
        pytest.param([5, 1], 4, [5, 1], id="a-piece-above-the-size"),
        pytest.param([2, 2], 4, [4], id="exact"),
        pytest.param([], 4, [], id="nothing"),
    ],
)
def test_chunked_joins_whole_pieces(sizes: list[int], size: int, expected: list[int]) -> None:
    pieces = [bytes([65 + i]) * n for i, n in enumerate(sizes)]
    chunks = list(chunked(pieces, size))
    assert [len(c) for c in chunks] == expected
    assert b"".join(chunks) == b"".join(pieces)


async def test_jobs_added_and_removed_during_a_scrape_leave_a_valid_text() -> None:
    metrics = fed(SchedulerMetrics(jobs_per_slice=5), 30)
    scrape = asyncio.ensure_future(metrics.scrape())
    await asyncio.sleep(0)
    for event in runs("late_comer", lateness=0.0, duration=0.5):
        metrics(event)
    metrics(JobRemoved(job_id="job3", scheduled_at=None))
    samples = parse(b"".join(await scrape).decode())
    # The scrape covers the jobs it started with; the next one has the new job too.
    assert value(samples, "scheduled_task_executions_total", status="success", task_name="job4")
    after = parse(b"".join(await metrics.scrape()).decode())
    assert value(after, "scheduled_task_duration_seconds_count", task_name="late_comer") == 1
    assert value(after, "scheduled_task_duration_seconds_count", task_name="job3") == 1


async def test_scrapes_arriving_together_share_one_answer() -> None:
    metrics = fed(SchedulerMetrics(jobs_per_slice=4), 20)
    first, second = await asyncio.gather(metrics.scrape(), metrics.scrape())
    assert first is second
    third = await metrics.scrape()
    assert third is not first  # a later scrape writes afresh
    assert third == first


async def test_a_scrape_whose_client_left_still_answers_the_others() -> None:
    metrics = fed(SchedulerMetrics(jobs_per_slice=4), 20)
    leaving = asyncio.ensure_future(metrics.scrape())
    staying = asyncio.ensure_future(metrics.scrape())
    await asyncio.sleep(0)
    leaving.cancel()
    assert parse(b"".join(await staying).decode())
    assert leaving.cancelled()


def test_an_embedders_collectors_are_served_and_cannot_take_our_names() -> None:
    registry = Registry()
    metrics = SchedulerMetrics(registry, version="1.0")
    sent = Counter("token_expiry_warnings_sent_total", "Expiry notices sent.", registry=registry)
    sent.inc({"app_id": "cli_a", "level": "warning"})
    samples = parse(metrics.render().decode())
    assert value(samples, "token_expiry_warnings_sent_total", app_id="cli_a", level="warning") == 1
    with pytest.raises(ValueError, match="already registered"):
        Counter("scheduled_task_executions_total", "clash", registry=registry)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"per_job_histograms": -1}, "per_job_histograms=-1 must be at least 0", id="limit"
        ),
        pytest.param({"jobs_per_slice": 0}, "jobs_per_slice=0 must be at least 1", id="slice"),
    ],
)
def test_bad_settings_name_the_fix(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SchedulerMetrics(**kwargs)


# -- served by the admin API ----------------------------------------------------------------


async def test_get_metrics_streams_the_whole_text_and_head_only_its_length() -> None:
    from kernel import Kernel
    from kernel.http import AdminServer

    metrics = fed(SchedulerMetrics(version="1.0"), 1500)  # ~1 MB: many 64 KB chunks
    async with Kernel(timezone="UTC") as kernel, AdminServer(
        kernel, port=0, metrics=metrics
    ) as admin:
        reader, writer = await asyncio.open_connection("127.0.0.1", admin.port)
        writer.write(b"HEAD /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        head = await reader.read()
        writer.close()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{admin.url}/metrics") as resp:
                body = await resp.read()
    assert body == metrics.render()
    assert resp.headers["Content-Length"] == str(len(body))
    status, _, rest = head.partition(b"\r\n")
    assert status == b"HTTP/1.1 200 OK"
    assert f"Content-Length: {len(body)}\r\n".encode() in rest
    assert rest.endswith(b"\r\n\r\n")  # headers only


async def test_a_scraper_that_hangs_up_mid_answer_is_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from kernel import Kernel
    from kernel.http import AdminServer

    metrics = fed(SchedulerMetrics(), 3000)
    async with Kernel(timezone="UTC") as kernel, AdminServer(
        kernel, port=0, metrics=metrics
    ) as admin:
        reader, writer = await asyncio.open_connection("127.0.0.1", admin.port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        await reader.read(1000)  # the headers and a little of the text
        writer.transport.abort()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{admin.url}/metrics") as resp:
                assert resp.status == 200
                assert await resp.read() == metrics.render()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
