"""A real browser on the dashboard: headless Chromium loads pages full of script payloads.

The app is served on 127.0.0.1 without credentials (a browser cannot send a bearer token),
with incidents whose labels, annotations, events and log lines try to run script. Our own
script must run (it marks <html class="js">), the injected ones must not (they would add
#xss-ran and retitle the page), and the payloads must show as text. Screenshots are kept
under the test's temporary folder as artifacts.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from receiver.app import Credentials
from tests.conftest import free_port
from tests.test_dashboard_support import (
    IMG,
    SCRIPT,
    Markup,
    dashboard_app,
    hostile_webhook,
    wait_for_incidents,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium chromium-driver)"
)
BROWSER_SECONDS = 60


@pytest.fixture
async def base_url(tmp_path: Path) -> AsyncIterator[str]:
    app = dashboard_app(tmp_path, Credentials())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def hostile_incident(base_url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession(base_url) as session:
        for group in ("hostile", "second"):
            async with session.post("/api/v1/alerts", json=hostile_webhook(group)) as response:
                assert response.status == 200

        async def get_json(path: str) -> Any:
            async with session.get(path) as response:
                return await response.json()

        incidents = await wait_for_incidents(get_json, 2)
    return dict(incidents[0])


async def chromium(tmp_path: Path, *action: str) -> str:
    """Run headless Chromium once, with a fresh profile; its stdout."""
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path)
    assert CHROMIUM is not None
    process = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        *action,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), BROWSER_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode()


@pytest.mark.parametrize("page", ["/", "/incidents/{id}"])
async def test_injected_scripts_do_not_run_and_show_as_text(
    tmp_path: Path, base_url: str, hostile_incident: dict[str, Any], page: str
) -> None:
    dom = await chromium(tmp_path, "--dump-dom", base_url + page.format(id=hostile_incident["id"]))
    parsed = Markup.of(dom)
    html_classes = next(attrs.get("class") or "" for tag, attrs in parsed.elements if tag == "html")
    ids = {attrs.get("id") for _, attrs in parsed.elements}
    title = dom.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "js" in html_classes.split()  # our own script ran: scripts were not simply off
    assert "xss-ran" not in ids
    assert title.endswith("· KubeBot")  # a payload that ran would have set it to "pwned"
    assert "&lt;script&gt;" in dom
    assert SCRIPT in "".join(parsed.text)


async def test_the_page_refreshes_itself_with_its_external_script(
    tmp_path: Path, base_url: str, hostile_incident: dict[str, Any]
) -> None:
    # Virtual time runs the 30 s refresh timer at once; the stamp is set only after a
    # successful fetch and swap, which the CSP's connect-src 'self' must allow.
    dom = await chromium(tmp_path, "--virtual-time-budget=35000", "--dump-dom", base_url + "/")
    stamp = re.search(r'<span id="refreshed"[^>]*>([^<]*)</span>', dom)
    assert stamp is not None
    assert stamp[1].startswith("updated ")
    assert f'href="/incidents/{hostile_incident["id"]}"' in dom  # the swapped-in list


async def test_screenshots_of_the_list_and_the_incident(
    tmp_path: Path, base_url: str, hostile_incident: dict[str, Any]
) -> None:
    shots = {"dashboard.png": "/", "incident.png": f"/incidents/{hostile_incident['id']}"}
    for name, page in shots.items():
        await chromium(tmp_path, f"--screenshot={tmp_path / name}", "--window-size=1280,900", base_url + page)
    await chromium(tmp_path, f"--screenshot={tmp_path / 'phone.png'}", "--window-size=390,844", base_url + "/")
    sizes = {name: (tmp_path / name).stat().st_size for name in [*shots, "phone.png"]}
    assert all(size > 10_000 for size in sizes.values()), sizes  # a rendered page, not a blank one
    assert IMG not in (tmp_path / "dashboard.png").read_bytes().decode(errors="ignore")
