"""The fake Lark server itself: the standalone script and the behaviours tests rely on."""

from __future__ import annotations

import importlib
import subprocess
import sys

import aiohttp
import anyio
import pytest

from actors.lark import LarkClient
from tests.fake_lark import FAKE_APP_ID, FAKE_APP_SECRET, FakeLark


async def test_script_prints_its_url_and_serves_until_terminated() -> None:
    command = [
        sys.executable,
        "-m",
        "tests.fake_lark",
        "--port",
        "0",
        "--users",
        "12",
        "--departments",
        "3",
        "--app",
        "cli_extra:extra-secret",
    ]
    async with await anyio.open_process(command, stderr=subprocess.DEVNULL) as process:
        assert process.stdout is not None
        with anyio.fail_after(20):
            line = b""
            while not line.endswith(b"\n"):
                line += await process.stdout.receive(1)
        url = line.decode().strip()
        assert url.startswith("http://127.0.0.1:")
        async with LarkClient("cli_extra", "extra-secret", base_url=url) as lark:
            assert len(await lark.list_departments()) == 3
            assert len(await lark.list_all_users()) == 12
        process.terminate()
        with anyio.fail_after(20):
            assert await process.wait() == 0


async def test_page_tokens_are_opaque_and_bound_to_their_listing(fake_lark: FakeLark) -> None:
    fake_lark.add_department("od-a")
    fake_lark.add_users(3)
    fake_lark.add_users(3, "od-a")
    async with aiohttp.ClientSession(base_url=fake_lark.url) as http:
        async with http.post(
            "/open-apis/auth/v3/tenant_access_token/internal",
            json={"app_id": FAKE_APP_ID, "app_secret": FAKE_APP_SECRET},
        ) as response:
            token = (await response.json())["tenant_access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        path = "/open-apis/contact/v3/users/find_by_department"
        query = {"department_id": "0", "page_size": "2"}
        async with http.get(path, params=query, headers=auth) as response:
            first = (await response.json())["data"]
        assert (len(first["items"]), first["has_more"]) == (2, True)
        assert not first["page_token"].isdigit()
        borrowed = {"department_id": "od-a", "page_size": "2", "page_token": first["page_token"]}
        async with http.get(path, params=borrowed, headers=auth) as response:
            assert (response.status, (await response.json())["code"]) == (400, 99992402)


@pytest.mark.parametrize(
    "module",
    [
        "actors.lark",
        "actors.lark.client",
        "actors.lark.errors",
        "actors.lark.models",
        "tests.fake_lark",
    ],
)
def test_public_modules_export_a_tuple_of_names_that_exist(module: str) -> None:
    imported = importlib.import_module(module)
    exported = imported.__all__
    assert isinstance(exported, tuple)
    assert len(set(exported)) == len(exported)
    assert [name for name in exported if not hasattr(imported, name)] == []
