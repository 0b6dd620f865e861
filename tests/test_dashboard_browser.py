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


class WebDriver:
    """Chromium through chromedriver's W3C WebDriver HTTP API: just what the form tests use."""

    def __init__(self, http: aiohttp.ClientSession, url: str, session: str) -> None:
        self.http, self.url, self.session = http, url, session

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        async with self.http.request(method, f"{self.url}/session/{self.session}{path}", json=body) as response:
            answer = await response.json()
        assert response.status == 200, answer
        return answer["value"]

    async def go(self, url: str) -> None:
        await self.call("POST", "/url", {"url": url})

    async def find(self, css: str) -> str:
        found = await self.call("POST", "/element", {"using": "css selector", "value": css})
        return str(next(iter(found.values())))

    async def type(self, css: str, text: str) -> None:
        await self.call("POST", f"/element/{await self.find(css)}/value", {"text": text})

    async def click(self, css: str) -> None:
        await self.call("POST", f"/element/{await self.find(css)}/click", {})

    async def source(self) -> str:
        return str(await self.call("GET", "/source"))

    async def until(self, text: str) -> str:
        for _ in range(400):
            html = await self.source()
            if text in html:
                return html
            await asyncio.sleep(0.05)
        raise AssertionError(f"{text!r} never showed; page: {html[-2000:]}")


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[WebDriver]:
    driver = shutil.which("chromedriver")
    if driver is None:
        pytest.skip("chromedriver is not installed (apt-get install chromium-driver)")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        driver, f"--port={port}", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path)
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--user-data-dir={profile}"]
    capabilities = {"alwaysMatch": {"goog:chromeOptions": {"binary": CHROMIUM, "args": args}}}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=BROWSER_SECONDS)) as http:
            for _ in range(200):
                try:
                    async with http.get(f"{url}/status") as response:
                        if (await response.json())["value"]["ready"]:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)
            async with http.post(f"{url}/session", json={"capabilities": capabilities}) as response:
                created = await response.json()
            assert response.status == 200, created
            webdriver = WebDriver(http, url, created["value"]["sessionId"])
            try:
                yield webdriver
            finally:
                async with http.delete(f"{url}/session/{webdriver.session}"):
                    pass
    finally:
        process.terminate()
        await process.wait()


async def test_acknowledging_in_the_browser_puts_it_on_the_timeline(
    base_url: str, hostile_incident: dict[str, Any], browser: WebDriver
) -> None:
    page = f"{base_url}/incidents/{hostile_incident['id']}"
    await browser.go(page)
    await browser.type("#ack-form input[name=by]", "browser-bob")
    await browser.type("#ack-form textarea[name=note]", "looking <b>now</b>")
    await browser.click("#ack-form button[type=submit]")
    html = await browser.until("browser-bob")
    timeline = html.split('id="timeline"', 1)[1].split("</section>", 1)[0]
    assert "browser-bob" in timeline
    assert "looking &lt;b&gt;now&lt;/b&gt;" in timeline  # the note, as text


async def test_a_forged_cross_site_post_is_refused(
    base_url: str, hostile_incident: dict[str, Any], browser: WebDriver
) -> None:
    # Another origin's page posts to the ack form on load, as a CSRF attack would.
    target = f"{base_url}/incidents/{hostile_incident['id']}/ack"
    evil_page = (
        f'<form id="f" method="post" action="{target}"><input name="by" value="eve"><input name="note" value="x">'
        "</form>"
        '<script>document.getElementById("f").submit()</script>'
    )

    async def evil(_: web.Request) -> web.Response:
        return web.Response(text=evil_page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", evil)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "localhost", port).start()
    try:
        await browser.go(f"http://localhost:{port}/")
        await browser.until("Refused")
    finally:
        await runner.cleanup()
    async with (
        aiohttp.ClientSession(base_url) as session,
        session.get(f"/api/v1/incidents/{hostile_incident['id']}") as response,
    ):
        assert (await response.json())["actions"] == []
