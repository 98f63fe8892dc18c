"""Token states: the one classification every view uses, per-app counts, the gauge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aioprometheus.collectors import Registry

from actors.jobs.token_states import (
    TOKEN_STATES,
    TokenStateGauge,
    build_report,
    expiry_status,
    token_state,
)
from actors.store import AppRecord, TokenInvalidReason, UserToken

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
D = 86400.0


def app(app_id: str, active: bool = True) -> AppRecord:
    return AppRecord(
        app_id=app_id, name=f"App {app_id}", active=active, created_at=NOW, updated_at=NOW
    )


def token(
    open_id: str, days: float, reason: TokenInvalidReason | None = None, app_id: str = "cli_a"
) -> UserToken:
    return UserToken(
        app_id=app_id,
        open_id=open_id,
        refresh_expires_at=NOW + timedelta(seconds=days * D),
        invalid_reason=reason,
        name=open_id.upper(),
    )


@pytest.mark.parametrize(
    ("days", "reason", "state"),
    [
        pytest.param(7.01, None, "valid", id="over-7-days"),
        pytest.param(7, None, "warning", id="7-days"),
        pytest.param(3.01, None, "warning", id="over-3-days"),
        pytest.param(3, None, "critical", id="3-days"),
        pytest.param(0.001, None, "critical", id="about-to-expire"),
        pytest.param(0, None, "expired", id="now"),
        pytest.param(-5, None, "expired", id="5-days-ago"),
        pytest.param(25, "revoked", "invalid", id="revoked-but-far-from-expiry"),
        pytest.param(-1, "expired", "invalid", id="refused-and-expired"),
    ],
)
def test_token_state_table(days: float, reason: TokenInvalidReason | None, state: str) -> None:
    t = token("ou_1", days, reason)
    assert token_state(t, expiry_status(t.refresh_expires_at, NOW, 7, 3)) == state


def test_report_counts_every_state_of_every_app_and_filters_users() -> None:
    tokens = [
        token("ou_c", 2),
        token("ou_i", 20, "invalid"),
        token("ou_v", 20),
        token("ou_w", 5),
        token("ou_x", -1),
        token("ou_other", 1, app_id="cli_gone"),  # its app is not reported: left out
    ]
    report = build_report(
        [app("cli_a"), app("cli_b")],
        tokens,
        now=NOW,
        warning_days=7,
        critical_days=3,
        expiring_days=3,
        link_for=lambda app_id: f"https://x/oauth/{app_id}/authorize",
    )
    assert [(a.app_id, a.counts, a.total) for a in report.apps] == [
        ("cli_a", {"valid": 1, "warning": 1, "critical": 1, "expired": 1, "invalid": 1}, 5),
        ("cli_b", dict.fromkeys(TOKEN_STATES, 0), 0),
    ]
    # Within 3 days (expired included) or refused by Lark.
    assert [(v.open_id, v.state, v.days_to_expiry) for v in report.tokens] == [
        ("ou_c", "critical", 2.0),
        ("ou_i", "invalid", 20.0),
        ("ou_x", "expired", -1.0),
    ]
    assert {v.reauthorize_url for v in report.tokens} == {"https://x/oauth/cli_a/authorize"}


def test_gauge_sets_every_state_and_zeroes_apps_that_went_away() -> None:
    registry = Registry()
    gauge = TokenStateGauge(registry)

    def values() -> dict[tuple[str, str], float]:
        return {(labels["app_id"], labels["state"]): v for labels, v in gauge.gauge.get_all()}

    both = build_report(
        [app("cli_a"), app("cli_b")],
        [token("ou_1", 1), token("ou_2", 1, app_id="cli_b")],
        now=NOW, warning_days=7, critical_days=3,
    )
    gauge.publish(both)
    assert values()[("cli_a", "critical")] == 1
    assert values()[("cli_a", "valid")] == 0
    assert len(values()) == 10
    only_a = build_report([app("cli_a")], [token("ou_1", 30)], now=NOW,
                          warning_days=7, critical_days=3)
    gauge.publish(only_a, partial=True)  # one app's recount leaves the others alone
    assert (values()[("cli_a", "valid")], values()[("cli_b", "critical")]) == (1, 1)
    gauge.publish(only_a)  # a full report: cli_b is gone
    assert [values()[("cli_b", s)] for s in TOKEN_STATES] == [0, 0, 0, 0, 0]
