from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tasklens import audit
from tasklens.api.deps import PrincipalDep, SessionDep
from tasklens.api.errors import ERROR_RESPONSES
from tasklens.api.schemas import AuditItem, AuditPageResponse, IsoDateTime
from tasklens.audit import AuditAction

router = APIRouter(tags=["audit"], responses=ERROR_RESPONSES)


@router.get("/audit")
async def get_audit(
    session: SessionDep,
    _: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before_id: Annotated[int | None, Query(ge=1)] = None,
    action: AuditAction | None = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[IsoDateTime | None, Query(description="ISO-8601; UTC if naive")] = None,
) -> AuditPageResponse:
    """Every operator action, newest first. Viewers may read it; nothing can change it."""
    page = await audit.read(
        session, limit=limit, before_id=before_id, action=action, actor=actor, since=since
    )
    return AuditPageResponse(
        items=[AuditItem.model_validate(e) for e in page.entries],
        next_before_id=page.next_before_id,
    )
