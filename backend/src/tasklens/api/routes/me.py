from __future__ import annotations

from fastapi import APIRouter

from tasklens.api.deps import PrincipalDep
from tasklens.api.errors import ERROR_RESPONSES
from tasklens.api.schemas import WhoAmI

router = APIRouter(tags=["auth"], responses=ERROR_RESPONSES)


@router.get("/me")
async def whoami(principal: PrincipalDep) -> WhoAmI:
    """The caller's token name and role, so the SPA can hide what a viewer may not do."""
    return WhoAmI(name=principal.name, role=principal.role)
