"""The text of a page: pure rendering of an alert's outcome, with untrusted text made safe."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from enrichers.kubernetes.report import read_facts
from enrichers.kubernetes.subject import resolve
from enrichers.times import parse_time
from receiver.incidents import severity_rank
from receiver.pipeline.advice import advice
from receiver.pipeline.outcome import CauseRecord, Outcome
from receiver.pipeline.stage import Message, Work
from receiver.service.silences import identifying_matchers

MAX_BUNDLED_LINES = 30  # other alerts listed in a group's message
MAX_LINES_PER_SOURCE = 20  # enough for a verdict, events and a short log excerpt
MAX_BUNDLED_ADVICE = 12  # what to do about the group's other alerts, after the leading one's


# `@everyone`, `@here`, `@channel`, `@all`, `@someone` ping people in Discord, Slack and
# Mattermost; `<!channel>`, `<@U123>`, `<@&role>`, `<#C123>` are Slack/Discord mention markup.
_AT_MENTION = re.compile(r"(?<![\w.+-])@(?=\w)|@(?=(?i:everyone|here|channel|all)\b)")
_MARKUP_MENTION = re.compile(r"<([!@#])")
_ZERO_WIDTH_SPACE = "\u200b"


def neutralise_mentions(text: str) -> str:
    """Mentions stay readable but no longer ping: a zero-width space breaks the markup.
    An e-mail address (`a@b`) is left alone: its `@` follows a word character."""
    text = _AT_MENTION.sub("@" + _ZERO_WIDTH_SPACE, text)
    return _MARKUP_MENTION.sub("<" + _ZERO_WIDTH_SPACE + r"\1", text)


def page_link(url: object) -> str | None:
    """Only a plain http(s) URL becomes a link in a page: no javascript:, data: or relative
    ones, and nothing that could start a line of its own."""
    if not isinstance(url, str) or not url or any(c.isspace() or not c.isprintable() for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else None


@dataclass(frozen=True)
class PageLinks:
    """Where people open KubeBot's dashboard and Alertmanager's UI (None: not configured);
    a firing page ends with a link to the alert on each."""

    dashboard: str | None = None
    alertmanager: str | None = None

    def lines(self, outcome: Outcome) -> list[str]:
        alert = outcome.alert
        if alert.status != "firing":
            return []
        links = [("Dashboard", self.dashboard_link(alert.fingerprint)), ("Silence", self.silence_link(alert.labels))]
        return [f"{name}: {url}" for name, url in links if url]

    def dashboard_link(self, fingerprint: str) -> str | None:
        # The incident id is assigned after rendering: the dashboard finds it by fingerprint.
        if not self.dashboard or not fingerprint:
            return None
        return page_link(f"{self.dashboard.rstrip('/')}/alerts/{quote(fingerprint, safe='')}")

    def silence_link(self, labels: Mapping[str, str]) -> str | None:
        """Alertmanager's new-silence form, prefilled with the matchers POST /api/v1/silences uses."""
        matchers = identifying_matchers(labels)
        if not self.alertmanager or not matchers:
            return None
        query = "{" + ",".join(str(m) for m in matchers) + "}"
        return page_link(f"{self.alertmanager.rstrip('/')}/#/silences/new?filter={quote(query, safe='')}")


NO_LINKS = PageLinks()


def render_message(outcome: Outcome, *others: Outcome, links: PageLinks = NO_LINKS) -> Message:
    """Title and plain-text body an on-call engineer reads first on a phone: the alert in
    full, and after it one line for each other alert of its group sent in the same message,
    then what to do and, where configured, links to the dashboard and to a silence.
    Labels, annotations and enrichment are untrusted: no mention in them pings anyone."""
    message = _render_group(outcome, *others)
    body = "\n".join((message.body, *_what_to_do(outcome, others), *links.lines(outcome)))
    return Message(neutralise_mentions(message.title), neutralise_mentions(body), message.notify_type)


def _what_to_do(outcome: Outcome, others: Sequence[Outcome] = ()) -> list[str]:
    """The page ends with what to do about the alert it leads with, then about the other
    alerts of its group (a namespace's group can hold unrelated faults), each named by its
    subject and said once, and the rules' runbooks, the leading one's first."""
    alert = outcome.alert
    own = _advice_for(outcome)
    hints = [f"  * {hint}" for hint in own]
    said = {_gist(hint) for hint in own}
    bundled: list[str] = []
    for other in others:
        if len(bundled) >= MAX_BUNDLED_ADVICE:
            break  # nothing more is said: the rest of a large group's advice is not worked out
        for hint in _advice_for(other):
            if _gist(hint) not in said and len(bundled) < MAX_BUNDLED_ADVICE:
                said.add(_gist(hint))
                bundled.append(f"  * {headline_subject(other) or other.alert.name}: {hint}")
    lines = ["What to do:", *hints, *bundled] if hints or bundled else []
    runbook = page_link(alert.annotations.get("runbook_url"))
    lines += [f"Runbook: {runbook}"] if runbook else []
    # The other rules' runbooks too, once each (a namespace's group holds several rules).
    shown = {runbook}
    for other in others:
        link = page_link(other.alert.annotations.get("runbook_url"))
        if link is not None and link not in shown:
            shown.add(link)
            lines.append(f"Runbook for {other.alert.name}: {link}")
    return lines


def _gist(hint: str) -> str:
    """A hint without its command: twenty pods of one crash loop say "read why the last
    instance exited" once, not once per pod."""
    return hint.rpartition(": ")[0] or hint


def _advice_for(outcome: Outcome) -> tuple[str, ...]:
    alert = outcome.alert
    if alert.status != "firing":
        return ()
    facts = outcome.facts_of("kubernetes")
    subject = resolve(alert.labels).subject
    return advice(subject, read_facts(facts), alert.labels, alert.annotations, parse_time(alert.starts_at))


def _render_group(outcome: Outcome, *others: Outcome) -> Message:
    message = _render_one(outcome)
    if not others:
        return message
    status = outcome.alert.status
    names = {o.alert.name for o in (outcome, *others)}
    first, subject = outcome.alert.labels, outcome.about
    # The carrier's subject's namespace (or its node): never the exporter's namespace.
    where = (subject.namespace or subject.name) if subject.names_an_object else ""
    title = f"[{status.upper()}:{len(others) + 1}] " + (
        outcome.alert.name if len(names) == 1 else f"{len(names)} kinds of alerts"
    )
    title += f" {where}" if where else ""
    title += f" ({first.get('severity', 'none')})" if status == "firing" else ""
    lines = [f"{len(others) + 1} alerts {status} in this group; first in full, then the others:", ""]
    lines.append(message.title)
    lines.append(message.body)
    lines.append("")
    lines.append("Also in this group:")
    for other in others[:MAX_BUNDLED_LINES]:
        annotations = other.alert.annotations
        summary = annotations.get("summary") or annotations.get("message") or ""
        kubernetes = other.enrichment.get("kubernetes")
        verdict = kubernetes.summary if kubernetes is not None else ()
        detail = verdict[0] if verdict else summary
        lines.append(f"  - {other.alert.name} {headline_subject(other)}" + (f": {detail}" if detail else ""))
    if len(others) > MAX_BUNDLED_LINES:
        lines.append(f"  ... and {len(others) - MAX_BUNDLED_LINES} more (see the dashboard)")
    return Message(title=title, body="\n".join(lines), notify_type=message.notify_type)


def _render_one(outcome: Outcome) -> Message:
    alert, group = outcome.alert, outcome.group
    labels, annotations = alert.labels, alert.annotations
    status = alert.status
    subject = headline_subject(outcome)
    severity = labels.get("severity", "none")
    flapping = outcome.reason == "flapping"
    title = f"[{'FLAPPING' if flapping else status.upper()}] {alert.name}"
    title += f" {subject}" if subject else ""
    title += f" ({severity})" if status == "firing" else ""
    lines: list[str] = [f"Flapping: {outcome.rule}; further changes are recorded, not paged."] if flapping else []
    summary = annotations.get("summary") or annotations.get("message")
    if summary:
        lines.append(summary)
    if annotations.get("description") and annotations.get("description") != summary:
        lines.append(annotations["description"])
    where = ", ".join(f"{k}={labels[k]}" for k in _PLACE_LABELS if labels.get(k))
    lines.append(f"Severity: {severity}. Started {alert.starts_at}" + (f". {where}" if where else ""))
    if status == "resolved" and alert.ends_at:
        lines.append(f"Resolved at {alert.ends_at}")
    causes = outcome.root_causes
    if causes:
        lines.append("Likely root causes:")
        lines.extend(
            f"  {i}. {cause_name(c)} (score {c.score:.2f})" + (f": {'; '.join(c.evidence[:2])}" if c.evidence else "")
            for i, c in enumerate(causes[:3], 1)
        )
    for source, enrichment in sorted(outcome.enrichment.items()):
        if enrichment.status == "unavailable":
            lines.append(f"{source}: unavailable ({enrichment.reason})")
        else:
            lines.extend(f"{source}: {line}" for line in enrichment.summary[:MAX_LINES_PER_SOURCE])
    links = [("Source", alert.generator_url), ("Alertmanager", group.external_url)]
    lines.extend(f"{name}: {url}" for name, url in ((n, page_link(u)) for n, u in links) if url)
    if group.truncated_alerts:
        lines.append(f"Alertmanager left out {group.truncated_alerts} more alerts of this group.")
    notify_type = "success" if status == "resolved" else _TYPE_BY_SEVERITY.get(severity, "warning")
    return Message(title=title, body="\n".join(lines), notify_type=notify_type)


_PLACE_LABELS = (
    "namespace",
    "pod",
    "container",
    "deployment",
    "statefulset",
    "daemonset",
    "job",
    "node",
    "service",
    "instance",
)
_TYPE_BY_SEVERITY = {
    "critical": "failure",
    "error": "failure",
    "warning": "warning",
    "info": "info",
}


def headline_subject(outcome: Outcome) -> str:
    """The object the alert is about ("HorizontalPodAutoscaler shop/frontend"), never the
    exporter that reported it; empty for an alert about the cluster as a whole."""
    subject = outcome.about
    return subject.ref if subject.names_an_object else ""


class RenderStage:
    """One message per channel set and status for the alerts of a batch (one Alertmanager
    group), as Alertmanager itself groups: 20 crash-looping pods page once, not 20 times.
    The most severe alert carries the message; the others record that they went with it."""

    def __init__(self, links: PageLinks = NO_LINKS) -> None:
        self._links = links

    async def exec(self, batch: Sequence[Work]) -> list[Work]:
        bundles: dict[tuple[tuple[str, ...], str], list[int]] = {}
        for i, work in enumerate(batch):
            if work.decision.action == "notify" and work.routes:
                bundles.setdefault((work.routes, work.alert.status), []).append(i)
        rendered = list(batch)
        for members in bundles.values():
            carrier = max(members, key=lambda i: (severity_rank(batch[i].alert.severity), -i))
            outcomes = [batch[carrier].outcome()] + [batch[i].outcome() for i in members if i != carrier]
            message = render_message(*outcomes, links=self._links)
            rendered[carrier] = dataclasses.replace(batch[carrier], message=message)
            for i in members:
                if i != carrier:
                    rendered[i] = dataclasses.replace(batch[i], sent_with=batch[carrier].alert.fingerprint)
        return rendered


def cause_name(cause: CauseRecord) -> str:
    """`Node worker-3` for a Kubernetes object, the plain name for a service."""
    if isinstance(cause.kind, str):
        where = f"{cause.namespace}/" if isinstance(cause.namespace, str) and cause.namespace else ""
        return f"{cause.kind} {where}{cause.service}"
    return cause.service
