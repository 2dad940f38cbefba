"""Webhook delivery: a POST per notification, off the API's path, retried with backoff.

Each webhook has its own queue and delivery task, so a receiver that is down delays only
its own notifications, in order (a `resolved` never overtakes its `firing`), and the API
never waits on any. A notification is tried `attempts` times (2xx is delivered; anything
else, or no answer within `timeout`, is retried after 1 s, 2 s, 4 s … up to `max_delay`),
then given up with an error in the log. Deliveries live in this process's memory: one
that is still retrying when the process stops is lost (logged).

A webhook URL may carry a secret (Slack's does): logs and errors name the webhook and its
`shown_url` only, and httpx's own request log line is rewritten the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import httpx

from tasklens.alerts.rules import shown_url
from tasklens.tracking.background import BackgroundTask

logger = logging.getLogger(__name__)

State = Literal["firing", "resolved"]
QUEUE_LIMIT = 1000  # per webhook; past it the oldest waiting notification is dropped


@dataclass(frozen=True, slots=True)
class Notification:
    rule: str
    kind: str
    state: State
    value: float | None
    threshold: float
    unit: str
    since: datetime  # when the firing began
    at: datetime  # when this state was decided
    link: str  # the dashboard page that shows it
    firing_id: int

    def body(self) -> dict[str, Any]:
        """The stable JSON body; `text` for Slack-compatible receivers."""
        value = "n/a" if self.value is None else f"{self.value:g}"
        if self.state == "firing":
            text = (
                f":rotating_light: TaskLens alert {self.rule} is firing: {self.kind} {value} "
                f"> {self.threshold:g} ({self.unit}) since {self.since.isoformat()} — {self.link}"
            )
        else:
            text = f":white_check_mark: TaskLens alert {self.rule} resolved ({value}) — {self.link}"
        return {
            "rule": self.rule,
            "kind": self.kind,
            "state": self.state,
            "value": self.value,
            "threshold": self.threshold,
            "unit": self.unit,
            "since": self.since.isoformat(),
            "at": self.at.isoformat(),
            "url": self.link,
            "firing_id": self.firing_id,
            "text": text,
        }


@dataclass
class DeliveryStats:
    delivered: int = 0
    retried: int = 0
    given_up: int = 0


@dataclass
class _Target:
    queue: asyncio.Queue[tuple[Notification, str]] = field(default_factory=asyncio.Queue)
    task: BackgroundTask | None = None


class _HideUrls(logging.Filter):
    """On httpx's logger: its `HTTP Request: POST <url> …` line with our URLs shortened."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for url in self.urls:
            for spelling in (url, str(httpx.URL(url))):
                message = message.replace(spelling, shown_url(url))
        record.msg, record.args = message, None
        return True


class Notifier:
    def __init__(
        self,
        *,
        attempts: int = 6,
        first_delay: float = 1.0,
        max_delay: float = 60.0,
        timeout: float = 10.0,
    ) -> None:
        self.attempts = attempts
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.stats = DeliveryStats()
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._targets: dict[str, _Target] = {}
        self._hide = _HideUrls()
        logging.getLogger("httpx").addFilter(self._hide)

    def send(self, notification: Notification, webhooks: dict[str, str]) -> None:
        """Queues `notification` for each webhook (name → URL); returns at once."""
        for name, url in webhooks.items():
            self._hide.urls.add(url)
            target = self._targets.setdefault(name, _Target())
            if target.queue.qsize() >= QUEUE_LIMIT:
                dropped, _ = target.queue.get_nowait()
                logger.error(
                    "alert webhook %s (%s): %d notifications waiting; dropped %s %s",
                    name, shown_url(url), QUEUE_LIMIT, dropped.rule, dropped.state,
                )  # fmt: skip
            target.queue.put_nowait((notification, url))
            if target.task is None:
                target.task = BackgroundTask(f"alert-webhook-{name}")
                target.task.start(functools.partial(self._deliver_loop, name, target))

    def waiting(self) -> int:
        return sum(t.queue.qsize() for t in self._targets.values())

    async def _deliver_loop(self, name: str, target: _Target) -> None:
        while True:
            notification, url = await target.queue.get()
            await self._deliver(name, url, notification)

    async def _deliver(self, name: str, url: str, notification: Notification) -> None:
        body = notification.body()
        where = f"{name} ({shown_url(url)})"
        delay = self.first_delay
        for attempt in range(1, self.attempts + 1):
            try:
                response = await self._client.post(url, json=body)
                if 200 <= response.status_code < 300:
                    self.stats.delivered += 1
                    return
                problem = f"answered {response.status_code}"
            except httpx.HTTPError as exc:
                problem = f"failed: {type(exc).__name__}"  # the message may quote the URL
            if attempt == self.attempts:
                break
            self.stats.retried += 1
            logger.warning(
                "alert webhook %s %s for %s %s; retry %d of %d in %g s",
                where, problem, notification.rule, notification.state,
                attempt, self.attempts - 1, delay,
            )  # fmt: skip
            await asyncio.sleep(delay)
            delay = min(self.max_delay, delay * 2)
        self.stats.given_up += 1
        logger.error(
            "alert webhook %s %s for %s %s; given up after %d attempts",
            where, problem, notification.rule, notification.state, self.attempts,
        )  # fmt: skip

    async def close(self) -> None:
        for name, target in self._targets.items():
            if target.task is not None:
                await target.task.stop()
            if not target.queue.empty():
                logger.warning(
                    "alert webhook %s: %d notifications not delivered before the stop",
                    name, target.queue.qsize(),
                )  # fmt: skip
        self._targets.clear()
        logging.getLogger("httpx").removeFilter(self._hide)
        with contextlib.suppress(Exception):
            await self._client.aclose()
