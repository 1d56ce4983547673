"""``loopline serve --auth`` and ``--workers N`` as real processes."""

from __future__ import annotations

import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from . import test_serve
from .test_serve import _row, register

serve = test_serve.serve  # the fixture that starts `loopline ...` servers


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_auth_requires_a_token_for_inference_only(serve: Any) -> None:
    import tritonclient.http as triton

    from loopline.auth.roles import Role
    from loopline.auth.store import AuthStore
    from loopline.config import get_settings
    from loopline.store.metadata import Database

    register("churn")
    db = Database(get_settings().metadata_url)
    try:
        store = AuthStore(db)
        store.create_user("app", None)
        store.set_member("default", "app", Role.VIEWER, actor="test")
        token, _ = store.create_token("app")
    finally:
        db.close()
    server = serve("serve", "models:/churn/1", "--auth", "--no-log")
    body = {"instances": [_row(1)]}
    assert httpx.post(f"{server.url}/invocations", json=body).status_code == 401
    wrong = httpx.post(
        f"{server.url}/invocations", json=body, headers={"authorization": "Bearer llt_wrong"}
    )
    assert wrong.status_code == 401
    good = httpx.post(
        f"{server.url}/invocations", json=body, headers={"authorization": f"Bearer {token}"}
    )
    assert good.status_code == 200
    for path in ("/v2/health/live", "/v2/health/ready", "/ping", "/metrics"):
        assert httpx.get(f"{server.url}{path}").status_code == 200, path

    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    rows = np.array([_row(2)], dtype=np.float64)
    tensor = triton.InferInput("input", list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows)
    answer = client.infer("churn", [tensor], headers={"Authorization": f"Bearer {token}"})
    assert answer.as_numpy("predict").shape == (1,)
    with pytest.raises(Exception, match="token is required"):
        client.infer("churn", [tensor])
    client.close()


@pytest.mark.slow
def test_workers_share_the_load_and_the_metrics(serve: Any) -> None:
    register("churn")
    server = serve("serve", "models:/churn/1", "--workers", "2")
    workers = _children(server.proc.pid)
    assert len(workers) == 2
    deadline = time.monotonic() + 30
    while not all(len(_children(w)) == 1 for w in workers):  # each runs its own log writer
        assert time.monotonic() < deadline, "a worker never started its log writer"
        time.sleep(0.1)

    def burst(n: int) -> list[int]:
        def client(seed: int) -> list[int]:
            with httpx.Client(timeout=30) as http:
                return [
                    http.post(
                        f"{server.url}/invocations", json={"instances": [_row(seed + i)]}
                    ).status_code
                    for i in range(n)
                ]

        with ThreadPoolExecutor(8) as pool:
            return [code for codes in pool.map(client, range(8)) for code in codes]

    codes = burst(20)
    os.kill(workers[0], signal.SIGKILL)  # the supervisor replaces it; the other answers
    codes += burst(10)
    deadline = time.monotonic() + 30
    while len(_children(server.proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    replaced = _children(server.proc.pid)
    assert len(replaced) == 2
    assert workers[0] not in replaced
    codes += burst(10)
    assert codes == [200] * len(codes)
    metrics = httpx.get(f"{server.url}/metrics").text
    counted = sum(
        float(m)
        for m in re.findall(
            r'^loopline_inference_requests_total\{code="200",[^}]*\} ([\d.e+]+)$', metrics, re.M
        )
    )
    assert counted == len(codes)  # every worker's samples, the killed one's too
