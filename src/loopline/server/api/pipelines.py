"""Pipelines: runs, steps, cache, schedules and triggers (REST, under /api/v1/pipelines)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from loopline.server.deps import caller

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/pipelines", tags=["pipelines"], dependencies=[Depends(caller)])
