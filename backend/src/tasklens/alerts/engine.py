"""The evaluation loop every `tasklens serve` process runs when `TASKLENS_ALERTS_FILE` is set.

Every `TASKLENS_ALERTS_INTERVAL_SECONDS` (15) each process re-reads the file if it changed
(a broken edit is logged once, naming the entry, and the last good rules stay), then tries
the lease (lease.py): the one process that holds it reads each rule's value (measures.py)
and moves its firing:

    breached, no open firing   → open one; `firing` webhook unless within the cooldown
    breached, open firing      → update its value (no webhook: no repeats while it fires)
    clear, open firing         → resolve it; `resolved` webhook if its `firing` was sent

The cooldown (`cooldown_minutes`, per rule) is the least time between two `firing`
webhooks of a rule: a rule that clears and fires again within it opens a firing (shown in
the history and the banner) whose webhooks, `firing` and `resolved`, are not sent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncEngine

from tasklens.alerts import firings
from tasklens.alerts.measures import Measures, Reading
from tasklens.alerts.rules import (
    UNITS,
    AlertKind,
    AlertsConfig,
    AlertsFileError,
    FileStamp,
    Rule,
    load_alerts,
)
from tasklens.alerts.webhooks import Notification, Notifier
from tasklens.lease import Lease
from tasklens.tracking.background import BackgroundTask
from tasklens.tracking.models import AlertFiring, utcnow

logger = logging.getLogger(__name__)


def evaluator_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class AlertEngine:
    def __init__(
        self,
        path: Path,
        measures: Measures,
        lease: Lease,
        notifier: Notifier,
        *,
        interval: float,
        dashboard_url: str,
    ) -> None:
        self.path = path
        self.measures = measures
        self.lease = lease
        self.notifier = notifier
        self.interval = interval
        self.dashboard_url = dashboard_url.rstrip("/")
        self.config = load_alerts(path)  # checked at startup by the settings already
        self._stamp = FileStamp.of(path)
        self._last_error: str | None = None
        self._leading = False
        self._background = BackgroundTask("alerts")

    @property
    def file_error(self) -> str | None:
        """Why the file's latest edit is not in force (None: it is)."""
        return self._last_error

    @property
    def engine(self) -> AsyncEngine:
        return self.measures.sources.engine

    def start(self) -> None:
        self._background.start(self._loop)

    async def stop(self) -> None:
        await self._background.stop()
        await self.notifier.close()
        if self._leading:
            try:
                await self.lease.release()  # the next process takes over at once
            except Exception as exc:
                logger.warning("alerts: lease not released: %s", exc)

    async def _loop(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(self.interval)

    def reload(self) -> AlertsConfig:
        """The file's rules when it changed and is valid; else the last good ones."""
        stamp = FileStamp.of(self.path)
        if stamp == self._stamp and self._last_error is None:
            return self.config
        try:
            config = load_alerts(self.path)
        except AlertsFileError as exc:
            if str(exc) != self._last_error:
                self._last_error = str(exc)
                logger.error("alerts file %s not applied, keeping the last good one: %s",
                             self.path, exc)  # fmt: skip
            self._stamp = stamp
            return self.config
        if self._last_error is not None or config != self.config:
            logger.warning("alerts file applied: %s (%d rules)", self.path, len(config.rules))
        self._last_error = None
        self._stamp = stamp
        self.config = config
        return config

    async def run_once(self) -> None:
        """One round; nothing it meets (a database or Redis outage) ends the loop."""
        config = self.reload()
        try:
            leading = await self.lease.hold(ttl_seconds=max(3 * self.interval, 5.0))
        except Exception as exc:
            logger.warning("alerts: lease unavailable, not evaluating: %s", exc)
            leading = False
        if leading != self._leading:
            logger.info(
                "alerts: this process %s the evaluator", "is now" if leading else "is no longer"
            )
            self._leading = leading
            self.measures.held.forget_others(set())
        if not leading:
            return
        try:
            await self.evaluate(config, utcnow())
        except Exception as exc:
            logger.warning("alerts: round failed: %s: %s", type(exc).__name__, exc)

    async def evaluate(self, config: AlertsConfig, now: datetime) -> None:
        names = [rule.name for rule in config.rules]
        await firings.close_removed(self.engine, names, now)
        self.measures.held.forget_others(set(names))
        open_now = await firings.open_firings(self.engine)
        for rule in config.rules:
            try:
                reading = await self.measures.read(rule, now)
            except Exception as exc:
                logger.warning("alerts: rule %s not evaluated: %s: %s",
                               rule.name, type(exc).__name__, exc)  # fmt: skip
                continue
            await self._apply(config, rule, reading, open_now.get(rule.name), now)

    async def _apply(
        self,
        config: AlertsConfig,
        rule: Rule,
        reading: Reading,
        current: AlertFiring | None,
        now: datetime,
    ) -> None:
        if reading.breached and current is None:
            last = await firings.last_notified(self.engine, rule.name)
            notify = last is None or now - last >= timedelta(minutes=rule.cooldown_minutes)
            opened = await firings.open_firing(
                self.engine,
                AlertFiring(
                    rule=rule.name,
                    kind=rule.kind,
                    started_at=now,
                    value=reading.value,
                    peak=reading.value,
                    threshold=rule.threshold,
                    link=self.link(rule),
                    notified=notify,
                    detail=dict(reading.detail) or None,
                ),
            )
            if opened is not None:
                logger.warning("alert %s firing: %s (threshold %g)%s", rule.name,
                               reading.value, rule.threshold,
                               "" if notify else " — within its cooldown, not sent")  # fmt: skip
                if notify:
                    self._send(config, rule, opened, "firing", reading.value, now)
        elif reading.breached and current is not None and current.id is not None:
            await firings.update_value(self.engine, current.id, reading.value)
        elif (
            not reading.breached
            and current is not None
            and current.id is not None
            and await firings.resolve(self.engine, current.id, now)
        ):
            logger.warning("alert %s resolved: %s", rule.name, reading.value)
            if current.notified:
                self._send(config, rule, current, "resolved", reading.value, now)

    def _send(
        self,
        config: AlertsConfig,
        rule: Rule,
        firing: AlertFiring,
        state: str,
        value: float | None,
        now: datetime,
    ) -> None:
        if not rule.notify or firing.id is None:
            return
        notification = Notification(
            rule=rule.name,
            kind=rule.kind,
            state="firing" if state == "firing" else "resolved",
            value=value,
            threshold=rule.threshold,
            unit=UNITS[AlertKind(rule.kind)],
            since=firing.started_at,
            at=now,
            link=firing.link,
            firing_id=firing.id,
        )
        self.notifier.send(notification, {name: config.webhooks[name] for name in rule.notify})

    def link(self, rule: Rule) -> str:
        """The dashboard page that shows what the rule measures."""
        base = self.dashboard_url
        kind = AlertKind(rule.kind)
        task_name = getattr(rule, "task_name", None)
        if kind is AlertKind.NEW_FAILURE:
            return f"{base}/failures"
        if kind in (AlertKind.FAILURE_RATE, AlertKind.SLOW):
            status = "success" if kind is AlertKind.SLOW else "failed"
            query = {"status": status} | ({"task_name": task_name} if task_name else {})
            return f"{base}/monitoring?{urlencode(query)}"
        if kind in (AlertKind.QUEUE_AGE, AlertKind.NO_WORKERS):
            return f"{base}/queues"
        return f"{base}/alerts"
