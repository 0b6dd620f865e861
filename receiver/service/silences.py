"""Silences in Alertmanager (API v2), on the labels that say which alert it is.

`identifying_matchers` is pure: equality matchers on `alertname`, the namespace and the
labels that name the alert's subject (enrichers.kubernetes.subject.resolve), never on
labels that change while the problem stays the same (a scrape target's address, the
Prometheus replica, a pod's template hash). Each matcher is one of the alert's own
labels with its own value, so the silence always covers the alert it was made from.

`AlertmanagerClient` creates them, and lists the alerts Alertmanager holds: unreachable
answers `AlertmanagerUnavailable`, a refusal `AlertmanagerRefused`, so the API says 503 or
502 and never 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from enrichers.kubernetes.subject import resolve
from receiver.matchers import Matcher

# Labels that differ between the scrapes, replicas and rollouts of one and the same problem.
VOLATILE_LABELS = frozenset({"instance", "endpoint", "prometheus", "uid", "pod_template_hash"})
_ALWAYS = ("alertname", "namespace", "exported_namespace")


@dataclass(frozen=True)
class SilenceMatcher:
    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    def to_api(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "isRegex": self.is_regex, "isEqual": self.is_equal}

    def __str__(self) -> str:
        op = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}
        return f"{self.name}{op[(self.is_regex, self.is_equal)]}{json.dumps(self.value)}"

    @classmethod
    def of(cls, matcher: Matcher) -> SilenceMatcher:
        return cls(matcher.name, matcher.value, is_regex=matcher.op in ("=~", "!~"), is_equal=matcher.op in ("=", "=~"))


def identifying_matchers(labels: Mapping[str, str]) -> tuple[SilenceMatcher, ...]:
    """Equality matchers that pick out this alert: its name, its namespace, and the labels
    naming its subject (with the container, when it names one), sorted by name."""
    subject = resolve(labels).subject
    names = {subject.name} if subject.kind != "Cluster" else set()
    if subject.container is not None:
        names.add(subject.container)
    chosen = {}
    for key, value in labels.items():
        if key in VOLATILE_LABELS or not value:
            continue
        if key in _ALWAYS or value.strip() in names:
            chosen[key] = value
    return tuple(SilenceMatcher(k, v) for k, v in sorted(chosen.items()))


def distinct_matcher_sets(label_sets: Iterable[Mapping[str, str]]) -> list[tuple[SilenceMatcher, ...]]:
    """One matcher set per distinct identity, in first-seen order."""
    seen: dict[tuple[SilenceMatcher, ...], None] = {}
    for labels in label_sets:
        seen.setdefault(identifying_matchers(labels), None)
    return list(seen)


class AlertmanagerUnavailable(Exception):
    """Not reachable (connection refused, reset, timed out): 503, try again later."""


class AlertmanagerRefused(Exception):
    """Reachable, but it refused the silence (any non-2xx) or answered what is not one: 502."""


@dataclass(frozen=True)
class CreatedSilence:
    id: str
    url: str
    matchers: tuple[SilenceMatcher, ...]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url}


class AlertmanagerClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        token: str | None = None,
        external_url: str | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        self._session = session
        self._url = url.rstrip("/")
        self._token = token
        self._external = (external_url or url).rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    def silence_url(self, silence_id: str) -> str:
        return f"{self._external}/#/silences/{silence_id}"

    async def create_silence(
        self,
        matchers: Sequence[SilenceMatcher],
        starts_at: datetime,
        duration: timedelta,
        created_by: str,
        comment: str,
    ) -> CreatedSilence:
        body = {
            "matchers": [m.to_api() for m in matchers],
            "startsAt": starts_at.isoformat(),
            "endsAt": (starts_at + duration).isoformat(),
            "createdBy": created_by,
            "comment": comment,
        }
        answer = await self._post("/api/v2/silences", body)
        silence_id = answer.get("silenceID") if isinstance(answer, dict) else None
        if not isinstance(silence_id, str) or not silence_id:
            raise AlertmanagerRefused("Alertmanager answered without a silenceID")
        return CreatedSilence(silence_id, self.silence_url(silence_id), tuple(matchers))

    async def active_alerts(self) -> list[dict[str, Any]]:
        """Every alert Alertmanager holds that has not resolved, silenced and inhibited ones
        included (API v2 objects); raises rather than answer a partial or empty list."""
        query = "?silenced=true&inhibited=true&active=true&unprocessed=true"
        answer = await self._request("GET", "/api/v2/alerts" + query)
        if not isinstance(answer, list) or not all(isinstance(a, dict) for a in answer):
            raise AlertmanagerRefused("Alertmanager answered what is not a list of alerts")
        return answer

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        return await self._request("POST", path, body)

    async def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            async with self._session.request(
                method, self._url + path, json=body, headers=headers, timeout=self._timeout
            ) as response:
                text = await response.text(errors="replace")
                if response.status >= 300:
                    raise AlertmanagerRefused(f"Alertmanager refused ({response.status}): {text[:200].strip()}")
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise AlertmanagerUnavailable(f"Alertmanager unreachable: {type(exc).__name__}: {exc}"[:300]) from None
        except aiohttp.ClientError as exc:
            raise AlertmanagerRefused(f"Alertmanager: {type(exc).__name__}: {exc}"[:300]) from None
        try:
            return json.loads(text)
        except ValueError:
            raise AlertmanagerRefused("Alertmanager answered what is not JSON") from None
