"""The engines under test, by name: how to probe, build and run each one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from bench._engines._base import Engine, Unsupported, job_id
from bench._measure import TimeBase

__all__ = ("ENGINES", "Engine", "EngineSpec", "Unsupported", "job_id")

_FIRE = frozenset({"steady", "burst", "idle", "churn", "cron-heavy"})
_KERNEL = frozenset({"steady-scrape"})  # scenarios only the kernel can run
_ADD = frozenset({"add-interval", "add-cron-same", "add-cron-distinct"})
_CRON = frozenset({"cron-heavy", "add-cron-same", "add-cron-distinct"})


@dataclass(frozen=True)
class EngineSpec:
    """An engine's name, the loop it runs on and the scenarios it can express."""

    name: str
    module: str  # bench._engines.<module>, imported in the subprocess only
    cls: str | None  # None: never runnable (reported with the probe's reason)
    loop: str  # "asyncio" or "uvloop"
    scenarios: frozenset[str]
    note: str = ""

    def probe(self) -> str | None:
        """None when the engine can run here, else the reason it cannot."""
        if self.loop == "uvloop":
            try:
                import uvloop  # noqa: F401
            except ImportError:
                return "uvloop is not installed (the bench extra)"
        mod = import_module(f"bench._engines.{self.module}")
        probe: Callable[[], str | None] | None = getattr(mod, "probe", None)
        return None if probe is None else probe()

    def build(self, tb: TimeBase) -> Engine:
        """A fresh instance; call on the running loop."""
        assert self.cls is not None
        factory: Callable[[TimeBase], Engine] = getattr(
            import_module(f"bench._engines.{self.module}"), self.cls
        )
        return factory(tb)


ENGINES: dict[str, EngineSpec] = {
    spec.name: spec
    for spec in (
        EngineSpec(
            "floor",
            "floor",
            "FloorEngine",
            "asyncio",
            _FIRE | {"add-interval"},
            "bare loop.call_at + create_task per fire",
        ),
        EngineSpec(
            "floor-uvloop",
            "floor",
            "FloorEngine",
            "uvloop",
            _FIRE | {"add-interval"},
            "the floor on uvloop",
        ),
        EngineSpec("kernel", "kernel", "KernelEngine", "asyncio", _FIRE | _ADD | _KERNEL),
        EngineSpec(
            "kernel-baseline",
            "kernel_baseline",
            "BaselineKernelEngine",
            "asyncio",
            _FIRE | _ADD | _KERNEL,
            "the kernel of $BENCH_BASELINE_TREE (e.g. main), to compare with",
        ),
        EngineSpec("kernel-uvloop", "kernel", "KernelEngine", "uvloop", _FIRE | _ADD),
        EngineSpec(
            "kernel-sqlite",
            "kernel_sqlite",
            "SqliteKernelEngine",
            "asyncio",
            _FIRE | _ADD,
            "schedule state journaled to SQLite (WAL, synchronous=NORMAL), write-ahead",
        ),
        EngineSpec(
            "kernel-sqlite-full",
            "kernel_sqlite",
            "SqliteFullKernelEngine",
            "asyncio",
            _FIRE | _ADD,
            "the same with synchronous=FULL",
        ),
        EngineSpec("apscheduler3", "apscheduler3", "APScheduler3Engine", "asyncio", _FIRE | _ADD),
        EngineSpec("apscheduler4", "apscheduler4", None, "asyncio", frozenset()),
        EngineSpec("aiocron", "aiocron_", "AiocronEngine", "asyncio", _CRON),
        EngineSpec(
            "kernel-pg1",
            "kernel_pg",
            "PgKernel1Engine",
            "asyncio",
            frozenset({"pg-store"}),
            "PersistentKernel, 1 replica, PostgreSQL store",
        ),
        EngineSpec(
            "kernel-pg3",
            "kernel_pg",
            "PgKernel3Engine",
            "asyncio",
            frozenset({"pg-store"}),
            "3 PersistentKernel replicas in one process, one PostgreSQL schema",
        ),
        EngineSpec(
            "kernel-pg3p",
            "kernel_pg_proc",
            "PgKernel3ProcEngine",
            "asyncio",
            frozenset({"pg-store"}),
            "3 PersistentKernel replicas as separate processes, one PostgreSQL schema",
        ),
    )
}
