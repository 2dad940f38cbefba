"""Alerts: the rules of TASKLENS_ALERTS_FILE with their state, and the firings' history
(the SPA's banner and /alerts page). Read-only: the file is the rules' one source."""

from __future__ import annotations

from fastapi import APIRouter

from tasklens.alerts import firings
from tasklens.alerts.rules import UNITS, AlertKind, shown_url
from tasklens.api.deps import PrincipalDep, RuntimeDep
from tasklens.api.errors import ERROR_RESPONSES
from tasklens.api.schemas import (
    AlertFiringItem,
    AlertRuleItem,
    AlertRulesResponse,
    AlertsResponse,
)

router = APIRouter(tags=["alerts"], responses=ERROR_RESPONSES)
_COMMON = {"name", "kind", "threshold", "notify", "cooldown_minutes"}


@router.get("/alerts/rules")
async def get_alert_rules(runtime: RuntimeDep, _: PrincipalDep) -> AlertRulesResponse:
    """The rules in force, each with its state; webhooks by name with their host only."""
    alerts = runtime.alerts
    if alerts is None:
        return AlertRulesResponse(configured=False, file_error=None, webhooks={}, rules=[])
    config = alerts.reload()
    open_now = await firings.open_firings(runtime.engine)
    rules = []
    for rule in config.rules:
        current = open_now.get(rule.name)
        rules.append(
            AlertRuleItem(
                name=rule.name,
                kind=rule.kind,
                threshold=rule.threshold,
                unit=UNITS[AlertKind(rule.kind)],
                notify=list(rule.notify),
                cooldown_minutes=rule.cooldown_minutes,
                params=rule.model_dump(exclude=_COMMON),
                state="firing" if current else "ok",
                since=current.started_at if current else None,
                value=current.value if current else None,
            )
        )
    return AlertRulesResponse(
        configured=True,
        file_error=alerts.file_error,
        webhooks={name: shown_url(url) for name, url in config.webhooks.items()},
        rules=rules,
    )


@router.get("/alerts")
async def get_alerts(runtime: RuntimeDep, _: PrincipalDep) -> AlertsResponse:
    """What fires now (the banner) and the latest firings, newest first."""
    history = [AlertFiringItem.model_validate(f) for f in await firings.history(runtime.engine)]
    open_now = await firings.open_firings(runtime.engine)
    return AlertsResponse(
        configured=runtime.alerts is not None,
        firing=sorted(
            (AlertFiringItem.model_validate(f) for f in open_now.values()),
            key=lambda f: f.started_at,
            reverse=True,
        ),
        history=history,
    )
