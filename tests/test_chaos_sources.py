"""The Kubernetes API, Prometheus and Jaeger hanging or answering garbage: the page still
goes out, and says which sources were unavailable and why."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal

import aiohttp
import pytest

from tests.conftest import HttpSink
from tests.fakes.chaos_tools import get_json, post_alerts, storm_body, wait_until_idle
from tests.fakes.kube_api import FakeKubeApi
from tests.fakes.telemetry_http import Reply, serve
from tests.processes import KubebotProcess

Misbehaviour = Literal["hang", "garbage"]
SOURCES = ("jaeger", "kubernetes", "prometheus")


def _config(sink_url: str, kube: str, prometheus: str, jaeger: str) -> dict[str, Any]:
    return {
        "kubernetes": {"mode": "auto", "host": kube, "call_timeout_seconds": 0.5},
        "prometheus": {"url": prometheus},
        "traces": {"jaeger": {"url": jaeger}},
        "enrichment": {"timeout_seconds": 1},
        "notify": {"default_urls": [sink_url], "backoff_initial_seconds": 0.1, "backoff_max_seconds": 0.5},
    }


async def _page_with_broken_sources(tmp_path: Path, sink: HttpSink, how: Misbehaviour) -> tuple[str, dict[str, Any]]:
    """Post one alert with every source misbehaving; the page's body and the incident."""
    kube = FakeKubeApi()
    kube.fail("*", how)
    reply = Reply.hanging() if how == "hang" else Reply.garbage()
    await kube.start()
    try:
        async with serve({"/": reply}) as prometheus, serve({"/": reply}) as jaeger:
            kubebot = KubebotProcess.create(tmp_path, _config(sink.url(), kube.url, prometheus.url, jaeger.url))
            await asyncio.to_thread(kubebot.start)
            try:
                async with aiohttp.ClientSession() as session:
                    status = await post_alerts(session, kubebot.url, storm_body("broken", ["checkout-0"]))
                assert status == 200
                received = await sink.wait_for(1)
                await wait_until_idle(kubebot.url)
                _, listed = await get_json(kubebot.url, "/api/v1/incidents")
                _, incident = await get_json(kubebot.url, f"/api/v1/incidents/{listed['incidents'][0]['id']}")
            finally:
                await asyncio.to_thread(kubebot.stop)
            requests = len(prometheus.seen), len(jaeger.seen), len(kube.requests)
    finally:
        await kube.close()
    assert all(requests), f"every fake was asked at least once: {requests}"
    return str(received[0]["message"]), incident


@pytest.mark.parametrize("how", ["hang", "garbage"])
async def test_page_goes_out_with_every_source_marked_unavailable_when_sources_misbehave(
    tmp_path: Path, http_sink: HttpSink, how: Misbehaviour
) -> None:
    body, incident = await _page_with_broken_sources(tmp_path, http_sink, how)
    enrichment = incident["enrichments"][0]
    assert {source: enrichment[source]["status"] for source in SOURCES} == dict.fromkeys(SOURCES, "unavailable")
    assert all(enrichment[source]["reason"] for source in SOURCES)
    assert [s for s in SOURCES if f"\n{s}: unavailable (" not in body] == []
    assert [n["state"] for n in incident["notifications"]] == ["delivered"]
