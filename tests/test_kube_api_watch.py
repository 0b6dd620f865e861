"""The stand-in Kubernetes API watches as the API server does, seen through
kubernetes-asyncio's own list and `watch.Watch().stream(...)`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client, watch

from tests.fakes.kube_api import FakeKubeApi
from tests.fakes.kube_objects import NAMESPACE, node, pod


def _pod(name: str) -> dict[str, Any]:
    return pod(name, node="worker-1", labels={"app": "shop"}, owned_by=None)


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeKubeApi, client.CoreV1Api]]:
    fake = FakeKubeApi(bookmark_seconds=0.05)
    fake.add(_pod("a"), _pod("b"), node("worker-1"))
    await fake.start()
    api_client = client.ApiClient(client.Configuration(host=fake.url))
    try:
        yield fake, client.CoreV1Api(api_client)
    finally:
        await api_client.close()
        await fake.close()


async def _events(stream: watch.Watch, count: int, seconds: float = 5.0) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    async with asyncio.timeout(seconds):
        async for event in stream:
            found.append(event)
            if len(found) == count:
                break
    return found


async def test_a_list_carries_the_current_resource_version_and_pages(api: Any) -> None:
    fake, core = api
    fake.add(_pod("c"))
    first = await core.list_pod_for_all_namespaces(limit=2)
    assert first.metadata.resource_version == str(fake.version)
    assert [p.metadata.name for p in first.items] == ["a", "b"]
    rest = await core.list_pod_for_all_namespaces(limit=2, _continue=first.metadata._continue)
    assert [p.metadata.name for p in rest.items] == ["c"]
    assert rest.metadata._continue is None


async def test_a_watch_from_a_list_version_streams_later_changes_in_order(api: Any) -> None:
    fake, core = api
    listed = await core.list_namespaced_pod(NAMESPACE)
    changed = _pod("a")
    changed["status"]["phase"] = "Failed"
    fake.modify(changed)
    fake.remove("pods", "b")
    fake.add(_pod("c"))
    stream = watch.Watch().stream(
        core.list_namespaced_pod, NAMESPACE, resource_version=listed.metadata.resource_version, timeout_seconds=5
    )
    events = await _events(stream, 3)
    await stream.close()
    assert [(e["type"], e["raw_object"]["metadata"]["name"]) for e in events] == [
        ("MODIFIED", "a"),
        ("DELETED", "b"),
        ("ADDED", "c"),
    ]
    assert events[0]["object"].status.phase == "Failed"
    assert stream.resource_version == str(fake.version)


async def test_bookmarks_carry_only_a_resource_version_when_asked_for(api: Any) -> None:
    fake, core = api
    listed = await core.list_node()
    fake.add(_pod("c"))  # a pod: no node event, but the version moves on
    stream = watch.Watch().stream(
        core.list_node, resource_version=listed.metadata.resource_version, allow_watch_bookmarks=True, timeout_seconds=5
    )
    (event,) = await _events(stream, 1)
    await stream.close()
    assert event["type"] == "BOOKMARK"
    assert event["raw_object"]["metadata"] == {"resourceVersion": str(fake.version)}


async def test_a_too_old_version_is_an_error_event_of_410_gone(api: Any) -> None:
    fake, core = api
    listed = await core.list_pod_for_all_namespaces()
    fake.add(_pod("c"))
    fake.compact()
    stream = watch.Watch().stream(
        core.list_pod_for_all_namespaces, resource_version=listed.metadata.resource_version, timeout_seconds=5
    )
    with pytest.raises(client.ApiException) as raised:
        await _events(stream, 1)
    assert raised.value.status == 410


async def test_the_server_ends_a_watch_after_timeout_seconds(api: Any) -> None:
    _, core = api
    listed = await core.list_node()
    stream = watch.Watch().stream(core.list_node, resource_version=listed.metadata.resource_version, timeout_seconds=1)
    assert await _events(stream, 1, seconds=5) == []  # the stream ended, nothing happened


async def test_a_watch_without_a_version_starts_with_the_current_objects(api: Any) -> None:
    _, core = api
    stream = watch.Watch().stream(core.list_namespaced_pod, NAMESPACE, timeout_seconds=5)
    events = await _events(stream, 2)
    await stream.close()
    assert [(e["type"], e["raw_object"]["metadata"]["name"]) for e in events] == [("ADDED", "a"), ("ADDED", "b")]


async def test_watch_can_be_forbidden_for_one_resource(api: Any) -> None:
    fake, core = api
    fake.forbid_watch("pods")
    assert (await core.list_pod_for_all_namespaces()).items  # list is still allowed
    stream = watch.Watch().stream(core.list_pod_for_all_namespaces, timeout_seconds=5)
    with pytest.raises(client.ApiException) as raised:
        await _events(stream, 1)
    assert raised.value.status == 403
    nodes = watch.Watch().stream(core.list_node, timeout_seconds=5)
    assert len(await _events(nodes, 1)) == 1
    await nodes.close()


async def test_cut_watches_end_the_stream_and_the_server_can_come_back(api: Any) -> None:
    fake, core = api
    listed = await core.list_node()
    stream = watch.Watch().stream(core.list_node, resource_version=listed.metadata.resource_version, timeout_seconds=30)
    reading = asyncio.ensure_future(_events(stream, 1))
    async with asyncio.timeout(5):
        while not fake.open_watches:
            await asyncio.sleep(0.01)
    await fake.close()
    try:
        got = await reading
    except aiohttp.ClientError:  # a reset mid-stream, as a proxy gives
        got = []
    assert got == []
    await stream.close()
    await fake.start()
    assert (await core.list_node()).items
