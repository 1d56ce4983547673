"""Deployments: routing state, rollouts and their history (REST, under /api/v1/deployments).

==========  ============================  =========================================
Method      Path                          Answer
==========  ============================  =========================================
GET         /                             ``{"deployments": [...]}``
GET         /{name}                       one deployment and its routing state
GET         /{name}/history               ``{"history": [...]}``, oldest first
POST        /{name}/canary                ``{"model": URI, "percent": P}``
POST        /{name}/promote               moves the followed alias to the canary
POST        /{name}/rollback              ``{"reason": TEXT}`` (optional)
==========  ============================  =========================================
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from starlette.concurrency import run_in_threadpool

from loopline.server.deps import caller
from loopline.serving.deployments import DeploymentService

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


@router.get("")
async def list_deployments(service: Service) -> dict[str, Any]:
    found = await run_in_threadpool(service.list)
    return {"deployments": [d.to_dict() for d in found]}


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
) -> dict[str, Any]:
    return (await run_in_threadpool(service.set_canary, name, model, percent)).to_dict()


@router.post("/{name}/promote")
async def promote(name: str, service: Service) -> dict[str, Any]:
    return (await run_in_threadpool(service.promote, name)).to_dict()


@router.post("/{name}/rollback")
async def rollback(
    name: str, service: Service, reason: Annotated[str, Body(embed=True)] = ""
) -> dict[str, Any]:
    return (await run_in_threadpool(lambda: service.rollback(name, reason=reason))).to_dict()
