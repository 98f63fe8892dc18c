"""The scenario registry: names, what they measure, and the function that runs each one.

To add a scenario, write ``async def scenario(ctx: Ctx) -> dict`` and register it here with
the engines able to run it (``EngineSpec.scenarios``); the CLI, the tables and the JSON pick
it up by name. ``ns`` overrides the default job counts when ``--n`` is not given.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bench import _cost_scenarios as cost
from bench import _fire_scenarios as fire
from bench._context import Ctx
from bench._pg_scenario import pg_store
from bench._scrape_scenario import steady_scrape

__all__ = ("SCENARIOS", "Scenario")


@dataclass(frozen=True)
class Scenario:
    """A named scenario; ``kind`` picks the table it is reported in."""

    name: str
    kind: str  # "fire" | "idle" | "add" | "scrape"
    run: Callable[[Ctx], Awaitable[dict[str, Any]]] | None
    summary: str
    ns: tuple[int, ...] | None = None  # default job counts, when not the CLI's


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("steady", "fire", fire.steady, "N interval jobs every second, phases spread"),
        Scenario("burst", "fire", fire.burst, "N one-shot jobs due at the same instant"),
        Scenario("idle", "idle", cost.idle, "N jobs due in an hour: CPU and wake-ups"),
        Scenario("add-interval", "add", cost.add_interval, "register N interval jobs"),
        Scenario(
            "add-cron-same",
            "add",
            cost.add_cron_same,
            "register N cron jobs sharing one expression",
        ),
        Scenario(
            "add-cron-distinct",
            "add",
            cost.add_cron_distinct,
            "register N cron jobs with distinct expressions",
        ),
        Scenario("churn", "fire", fire.churn, "add/reschedule/remove while N jobs fire"),
        Scenario("cron-heavy", "fire", fire.cron_heavy, "N cron jobs '* * * * *', one boundary"),
        Scenario(
            "pg-store",
            "fire",
            pg_store,
            "N interval jobs every second on PostgreSQL-backed replicas (1 or 3)",
            ns=(200, 1000),
        ),
        Scenario(
            "steady-scrape",
            "scrape",
            steady_scrape,
            "steady N jobs/s, /metrics scraped every second in alternate blocks",
            ns=(1000, 10000),
        ),
    )
}
