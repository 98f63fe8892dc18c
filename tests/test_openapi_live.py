"""Schemathesis runs ``/openapi.json`` against a live ``lark-scheduler serve`` (a subprocess
on the embedded store): no 5xx, every answer's status, content type, headers and body
conform to the document, requests the document forbids are refused, and the token is
enforced. The examples are bounded (``-n``) and the seed fixed, so the run stays short and
repeatable. A second test walks the document with real ids (the built-in jobs, a recorded
failure) so the success answers are checked too."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis

from tests.test_serve_e2e import Process, cli, free_port, get, service_env

pytestmark = pytest.mark.slow

TOKEN = "e2e-admin-token-0123456789abcdef"  # what service_env configures
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_EXAMPLES = 8
SEED = 20261201
# positive_data_acceptance is left out: /oauth/callback rightly refuses a well-formed state
# that the service did not sign (400), which that check counts as a schema-valid refusal.
EXCLUDED_CHECKS = "positive_data_acceptance"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[str]:
    """``serve`` with an app whose Lark is unreachable (so its sync fails and leaves a
    failure record); answers the base URL."""
    port = free_port()
    dead_lark = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = service_env(tmp_path, dead_lark, port, grace=1)
    env["LARK_SCHEDULER_LARK__MAX_RETRIES"] = "0"
    env["LARK_APP_SECRET"] = "live-secret-value"
    cli(env, tmp_path, "apps", "add", "cli_live", "--name", "Live", "--admin", "ou_x")
    serve = Process([sys.executable, "-m", "actors.cli", "serve"], env, tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        serve.wait_for(f"Admin API listening on {base}")
        yield base
    finally:
        serve.stop()
    # Failed runs log their traceback; nothing else may.
    unexpected = [line for line in serve.lines if "admin API:" in line and "failed" in line]
    assert unexpected == [], "\n".join(unexpected)


def test_schemathesis_finds_no_5xx_and_no_answer_outside_the_document(
    live: str, tmp_path: Path
) -> None:
    argv = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{live}/openapi.json",
        "-H", f"Authorization: Bearer {TOKEN}",
        "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
        "--exclude-checks", EXCLUDED_CHECKS,
        "--generation-database", "none",
        "--workers", "1",
        "--no-color",
    ]
    started = time.monotonic()
    # Its cache (.schemathesis/) goes to the test's directory, not the checkout.
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False,
                          cwd=tmp_path)
    took = time.monotonic() - started
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-8000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", report)
    assert selected is not None, report[-3000:]
    # Every operation of the document (it leaves out /openapi.json itself).
    assert selected.group(1) == selected.group(2) == "16", report[-3000:]
    assert " failed" not in report.split("SUMMARY")[-1], report[-3000:]
    print(f"schemathesis: {took:.1f} s\n" + report[-1500:])


def test_success_answers_with_real_ids_conform(live: str) -> None:
    schema = schemathesis.openapi.from_url(f"{live}/openapi.json")

    def call(path: str, method: str, **parts: Any) -> Any:
        case = schema[path][method].Case(**parts)
        response = case.call_and_validate(headers=AUTH)
        return response

    for job_id in ("sync_user_info", "check_token_expiry", "cleanup_expired_tokens",
                   "health_check"):
        path = {"job_id": job_id}
        assert call("/jobs/{job_id}", "GET", path_parameters=path).status_code == 200
        assert call("/jobs/{job_id}/pause", "POST", path_parameters=path,
                    body={}).json()["paused"] is True
        assert call("/jobs/{job_id}/resume", "POST", path_parameters=path,
                    body={}).json()["paused"] is False
    # The app's Lark cannot be reached: the sync fails and leaves a record.
    run = call("/jobs/{job_id}/run", "POST", path_parameters={"job_id": "sync_user_info"},
               body={})
    assert run.status_code == 202
    records: list[Any] = []
    deadline = time.monotonic() + 15
    while not records:
        assert time.monotonic() < deadline, "the failed sync left no record"
        time.sleep(0.1)
        records = call("/failures", "GET", query={"job_id": "sync_user_info"}).json()[
            "failures"
        ]
    failure = {"failure_id": records[0]["id"]}
    assert call("/failures/{failure_id}", "GET", path_parameters=failure).status_code == 200
    assert call("/failures/{failure_id}/retry", "POST", path_parameters=failure,
                body={}).status_code == 202
    report = call("/tokens", "GET", query={"app_id": "cli_live", "expiring": 7}).json()
    assert [app["app_id"] for app in report["apps"]] == ["cli_live"]
    assert call("/tokens/{app_id}/{open_id}", "GET",
                path_parameters={"app_id": "cli_live", "open_id": "ou_nobody"}
                ).status_code == 404
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/jobs"):
        assert call(path, "GET").status_code == 200
    assert call("/oauth/{app_id}/authorize", "GET",
                path_parameters={"app_id": "cli_live"}).status_code == 302
    assert get(f"{live}/ui")[0] == 200
