"""The built-in jobs on a kernel that stores its jobs (``cluster.enabled``): stored as
``actors.builtin`` import references that run on the bound service, declared by replicas
starting together without conflict, and removed from the store when disabled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from actors import builtin
from actors.cluster import make_cluster_kernel, prune_disabled_jobs
from actors.config import Config
from actors.service import JOB_IDS
from kernel.distributed._refs import import_ref
from kernel.distributed.persistent import PersistentKernel
from tests._service_support import ServiceBackend, running_service
from tests.fake_lark import FakeLark

from .pg_helpers import unique_schema


async def test_a_builtin_job_without_a_bound_service_says_where_it_runs() -> None:
    with pytest.raises(RuntimeError) as info:
        await builtin.health_check()
    assert str(info.value) == (
        "no Lark service is running in this process: built-in jobs run inside "
        "`lark-scheduler serve` or `lark-scheduler worker`"
    )


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[ServiceBackend]:
    backend = ServiceBackend("postgres", tmp_path)
    yield backend
    await backend.cleanup()


def cluster_config(backend: ServiceBackend, fake: FakeLark, schema: str, **env: str) -> Config:
    return backend.config(fake, LARK_SCHEDULER_CLUSTER__ENABLED="true",
                          LARK_SCHEDULER_CLUSTER__SCHEMA=schema, **env)


@pytest.mark.postgres
async def test_replicas_starting_together_store_the_jobs_once_as_references(
    backend: ServiceBackend, fake_lark: FakeLark
) -> None:
    schema = unique_schema("t_jobs")
    config = cluster_config(backend, fake_lark, schema)
    async with running_service(config) as service:
        kernels = [
            make_cluster_kernel(msgspec.structs.replace(config, cluster=msgspec.structs.replace(
                config.cluster, replica_id=f"r{i}")), failure_store=service.store)
            for i in range(3)
        ]
        for kernel in kernels:
            service.register_jobs(kernel)
        try:
            await asyncio.gather(*(kernel.start() for kernel in kernels))
            rows = await kernels[0].db.fetch(
                "SELECT id, func_ref, executor, version FROM jobs ORDER BY id")
            assert sorted((r["id"], r["func_ref"], r["executor"], r["version"]) for r in rows) \
                == sorted((job, f"actors.builtin:{job}", "local", 1) for job in JOB_IDS)
            for kernel in kernels:
                assert [job.id for job in kernel.get_jobs()] == list(JOB_IDS)
            # The stored reference runs on this service.
            report = await import_ref(kernels[1].get_job("health_check").func_ref)()
            assert [r.component for r in report.results] == ["database", "rabbitmq", "lark"]
        finally:
            for kernel in kernels:
                await kernel.shutdown()
            await kernels[0].db.drop()
    with pytest.raises(RuntimeError, match="no Lark service is running"):
        await builtin.health_check()  # the service unbound itself when it closed


@pytest.mark.postgres
async def test_a_job_disabled_in_the_configuration_leaves_the_store(
    backend: ServiceBackend, fake_lark: FakeLark
) -> None:
    schema = unique_schema("t_jobs")
    before = cluster_config(backend, fake_lark, schema)
    after = cluster_config(backend, fake_lark, schema,
                           LARK_SCHEDULER_JOBS__CLEANUP_EXPIRED_TOKENS__ENABLED="false")
    async with running_service(before) as service:
        first = make_cluster_kernel(before, failure_store=service.store)
        service.register_jobs(first)
        await first.start()
        await first.shutdown()
    async with running_service(after) as service:
        kernel: PersistentKernel = make_cluster_kernel(after, failure_store=service.store)
        service.register_jobs(kernel)
        try:
            await kernel.start()
            assert prune_disabled_jobs(kernel, after) == ["cleanup_expired_tokens"]
            await kernel.flush()
            rows = await kernel.db.fetch("SELECT id FROM jobs ORDER BY id")
            assert sorted(r["id"] for r in rows) == sorted(
                job for job in JOB_IDS if job != "cleanup_expired_tokens")
            assert prune_disabled_jobs(kernel, after) == []
        finally:
            await kernel.shutdown()
            await kernel.db.drop()
