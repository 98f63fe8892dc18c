"""Secret redaction by shape: the masking itself, then the three places a secret in an
exception message would leave the process (text logs, JSON logs, ``GET /failures``)."""

from __future__ import annotations

import asyncio
import io
import json

import aiohttp
import pytest

from kernel import Kernel
from kernel.http import AdminServer
from kernel.logs import configure_logging
from kernel.redaction import redact

pytestmark = pytest.mark.usefixtures("anyio_backend")

PW = "Hunter2-Xyz"
TOKEN = "redaction-admin-token-0123456789"

# (id, text holding the secret PW, what redact() makes of it)
SHAPES = [
    ("url-userinfo", f"connect postgresql://lark:{PW}@db:5432/lark failed",
     "connect postgresql://lark:***@db:5432/lark failed"),
    ("url-userinfo-amqp", f"amqp://guest:{PW}@127.0.0.1:5672/ refused",
     "amqp://guest:***@127.0.0.1:5672/ refused"),
    ("url-password-with-at", f"postgresql://u:{PW}@x@h/db", "postgresql://u:***@h/db"),
    ("prefixed-token", f"GET /failures?admin_token={PW}&limit=5",
     "GET /failures?admin_token=***&limit=5"),
    ("env-style-token", f"LARK_SCHEDULER_ADMIN_TOKEN={PW}", "LARK_SCHEDULER_ADMIN_TOKEN=***"),
    ("prefixed-password", f"db_password={PW} host=db", "db_password=*** host=db"),
    ("prefixed-secret", f"lark_app_secret: {PW}", "lark_app_secret: ***"),
    ("camel-case-secret", f"appSecret={PW}", "appSecret=***"),
    ("hyphenated-api-key", f"X-Api-Key: {PW}", "X-Api-Key: ***"),
    ("bearer-key", f"bearer={PW}", "bearer=***"),
    ("bearer-header", f"Authorization: Bearer {PW}", "Authorization: Bearer ***"),
    ("basic-header", "Authorization: Basic bGFyazpIdW50ZXIyLVh5eg==", "Authorization: Basic ***"),
    ("json-key", f'{{"app_id": "cli_1", "db_password": "{PW}"}}',
     '{"app_id": "cli_1", "db_password": "***"}'),
    ("json-value-with-spaces", f'{{"admin_token": "{PW} and more", "n": 1}}',
     '{"admin_token": "***", "n": 1}'),
    ("json-escaped-quote", f'{{"secret": "a\\"{PW}", "n": 1}}', '{"secret": "***", "n": 1}'),
    ("dict-repr", f"{{'refresh_token': '{PW}', 'n': 1}}", "{'refresh_token': '***', 'n': 1}"),
    ("dict-repr-spaces", f"{{'password': 'a {PW} b'}}", "{'password': '***'}"),
    ("kwargs-repr", f"connect(user='lark', password='{PW}')",
     "connect(user='lark', password='***')"),
    ("cut-off-quote", f"password='{PW}", "password='***"),
    ("lark-tenant-token", "t-g1044ghJRUIJJ5ELPE7ZEMOZMHYMYGRX expired", "t-*** expired"),
]  # fmt: skip
KEPT = [
    ("hyphenated-words", "a t-shirt and a-b-c"),
    ("plural-and-compound-names", "tokens=5 token_count=3 secrets kept"),
    ("url-without-password", "postgresql://lark@db:5432/lark"),
    ("url-with-port", "http://127.0.0.1:8080/jobs"),
    ("job-line", "Scheduled task sync_user_info succeeded in 0.5s"),
    ("already-masked", "app_secret=*** and postgresql://u:***@h/db"),
]


@pytest.mark.parametrize(("text", "expected"), [pytest.param(t, e, id=i) for i, t, e in SHAPES])
def test_redact_masks_every_secret_shape(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected
    assert PW not in redact(text)


@pytest.mark.parametrize("text", [pytest.param(t, id=i) for i, t in KEPT])
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.usefixtures("restore_logging")
async def test_no_shape_reaches_logs_or_failure_records(fmt: str) -> None:
    """Every shape, raised by a failing job, is masked in the log and in GET /failures."""
    out = io.StringIO()
    configure_logging("DEBUG", fmt, out)  # type: ignore[arg-type]
    kernel = Kernel(timezone="UTC")
    done = asyncio.Event()
    failed: list[str] = []

    def make_job(text: str) -> object:
        async def job() -> None:
            try:
                raise ConnectionError(f"while connecting: {text}")
            finally:
                failed.append(text)
                if len(failed) == len(SHAPES):
                    done.set()

        return job

    async with kernel, AdminServer(kernel, port=0, token=TOKEN) as admin:
        for name, text, _ in SHAPES:
            kernel.add_interval_job(make_job(text), hours=1, job_id=f"job-{name}")  # type: ignore[arg-type]
            kernel.run_job(f"job-{name}")
        await asyncio.wait_for(done.wait(), 10)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            for _ in range(100):
                async with http.get(f"{admin.url}/failures?limit=100") as resp:
                    answer = await resp.text()
                if len(json.loads(answer)["failures"]) == len(SHAPES):
                    break
                await asyncio.sleep(0.05)
    log = out.getvalue()
    assert log.count("Failed scheduled task") == len(SHAPES)
    records = json.loads(answer)["failures"]
    assert len(records) == len(SHAPES)
    for where, text in (("log", log), ("GET /failures", answer)):
        assert PW not in text, f"{where} shows the secret"
        assert "bGFyazpIdW50ZXIyLVh5eg" not in text, f"{where} shows the basic credentials"
        assert "g1044ghJRUIJJ5ELPE7ZEMOZMHYMYGRX" not in text, f"{where} shows the Lark token"
    if fmt == "json":
        assert all(json.loads(line) for line in log.splitlines())
