"""MLflow 3's ``/mlflow/server-info``: what the server supports.

MLflow 3 clients ask before downloading artifacts (multipart downloads) and when
choosing workspaces; a 404 would make them ask again on every download.
"""

from starlette.responses import Response

from loopline.server.mlflow_compat._edge import CallerDep, area_router, reply

__all__ = ["SERVER_INFO", "router"]

router = area_router("/mlflow")

SERVER_INFO = {
    "store_type": None,
    "workspaces_enabled": False,
    "trace_archival_enabled": False,
    "multipart_uploads_enabled": False,
    "multipart_downloads_enabled": False,
    "presigned_upload_run_id_supported": False,
    "presigned_upload_model_id_supported": False,
    "features_enabled": {"gateway": False},
}


@router.get("/server-info")
def server_info(_who: CallerDep) -> Response:
    return reply(SERVER_INFO)
