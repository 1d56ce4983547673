"""Monitoring: monitors, their results over time, alerts (REST, under /api/v1/monitors)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from loopline.server.deps import caller

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/monitors", tags=["monitors"], dependencies=[Depends(caller)])
