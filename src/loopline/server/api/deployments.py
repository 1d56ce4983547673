"""Deployments: routing state, rollouts and their history (REST, under /api/v1/deployments)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from loopline.server.deps import caller

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/deployments", tags=["deployments"], dependencies=[Depends(caller)]
)
