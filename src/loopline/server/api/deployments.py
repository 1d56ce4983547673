"""Deployments: routing state, rollouts and their history (REST, under /api/v1/deployments).

==========  ============================  =========================================
Method      Path                          Answer
==========  ============================  =========================================
GET         /                             ``{"deployments": [...]}``
POST        /                             ``{"name", "model": URI, "limits", "logging"}``
GET         /{name}                       one deployment and its routing state
GET         /{name}/history               ``{"history": [...]}``, oldest first
POST        /{name}/canary                ``{"model": URI, "percent": P, "limits"}``
POST        /{name}/shadow                ``{"model": URI}``
DELETE      /{name}/shadow                stops mirroring
PUT         /{name}/limits                ``{"max_error_rate", "max_p99_ms", ...}``
POST        /{name}/promote               moves the followed alias to the canary
POST        /{name}/rollback              ``{"reason": TEXT}`` (optional)
==========  ============================  =========================================

The limits include the promotion rule (``promote_after_requests``,
``promote_after_seconds``); ``limits`` on a canary changes them in the same revision.

Every answer about one deployment is its state (``Deployment.to_dict``); errors are
the server's usual ``{"error_code", "message", "hint"}``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from loopline.server.deps import caller
from loopline.serving.deployments import Deployment, DeploymentService

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/deployments", tags=["deployments"], dependencies=[Depends(caller)]
)


def _deployments(request: Request) -> DeploymentService:
    from loopline.registry.service import RegistryService

    who = caller(request)
    tracking = request.app.state.service
    registry = RegistryService(tracking.db, tracking.blobs, user=who.name, project=who.project)
    return DeploymentService(tracking.db, registry, actor=who.name, project=who.project)


Service = Annotated[DeploymentService, Depends(_deployments)]


class NewDeployment(BaseModel):
    name: str
    model: str
    limits: dict[str, float] = Field(default_factory=dict)
    logging: dict[str, Any] = Field(default_factory=dict)


class Limits(BaseModel):
    max_error_rate: float | None = None
    max_p99_ms: float | None = None
    window_seconds: float | None = None
    min_requests: int | None = None
    promote_after_requests: int | None = None
    promote_after_seconds: float | None = None


@router.get("")
async def list_deployments(service: Service) -> dict[str, Any]:
    found = await run_in_threadpool(service.list)
    return {"deployments": [d.to_dict() for d in found]}


@router.post("")
async def create_deployment(body: NewDeployment, service: Service) -> dict[str, Any]:
    def create() -> Deployment:
        return service.create(body.name, body.model, limits=body.limits, logging=body.logging)

    return (await run_in_threadpool(create)).to_dict()


@router.get("/{name}")
async def get_deployment(name: str, service: Service) -> dict[str, Any]:
    return (await run_in_threadpool(service.get, name)).to_dict()


@router.get("/{name}/history")
async def deployment_history(name: str, service: Service) -> dict[str, Any]:
    found = await run_in_threadpool(service.history, name)
    return {"history": [h.to_dict() for h in found]}


@router.post("/{name}/canary")
async def start_canary(
    name: str,
    service: Service,
    model: Annotated[str, Body()],
    percent: Annotated[float, Body()] = 10.0,
    limits: Annotated[Limits | None, Body()] = None,
) -> dict[str, Any]:
    changes = limits.model_dump(exclude_none=True) if limits else None

    def start() -> Deployment:
        return service.set_canary(name, model, percent, limits=changes)

    return (await run_in_threadpool(start)).to_dict()


@router.post("/{name}/shadow")
async def set_shadow(
    name: str, service: Service, model: Annotated[str, Body(embed=True)]
) -> dict[str, Any]:
    return (await run_in_threadpool(service.set_shadow, name, model)).to_dict()


@router.delete("/{name}/shadow")
async def remove_shadow(name: str, service: Service) -> dict[str, Any]:
    return (await run_in_threadpool(service.set_shadow, name, None)).to_dict()


@router.put("/{name}/limits")
async def set_limits(name: str, body: Limits, service: Service) -> dict[str, Any]:
    limits = body.model_dump(exclude_none=True)
    return (await run_in_threadpool(service.set_limits, name, limits)).to_dict()


@router.post("/{name}/promote")
async def promote(name: str, service: Service) -> dict[str, Any]:
    return (await run_in_threadpool(service.promote, name)).to_dict()


@router.post("/{name}/rollback")
async def rollback(
    name: str, service: Service, reason: Annotated[str, Body(embed=True)] = ""
) -> dict[str, Any]:
    return (await run_in_threadpool(lambda: service.rollback(name, reason=reason))).to_dict()
