"""The SDK's client: one class over any transport, writes buffered in the background.

>>> import tempfile
>>> from loopline.config import Settings
>>> client = Client(settings=Settings(home=__import__("pathlib").Path(tempfile.mkdtemp())))
>>> exp_id = client.create_experiment("doc")
>>> run = client.create_run(exp_id, run_name="first")
>>> client.log_metric(run.run_id, "loss", 0.5, step=1)
>>> client.set_terminated(run.run_id)
>>> client.get_run(run.run_id).data.metrics
{'loss': 0.5}
>>> client.close()
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.config import Settings, get_settings
from loopline.errors import InvalidArgumentError, NotFoundError
from loopline.tracking.entities import NewRun, RunInfo, RunStatus, RunUpdate
from loopline.tracking.writer import DELETE_TAG, PARAM, TAG, BatchWriter

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable

    import pandas as pd

    from loopline.client.transport import Transport
    from loopline.events import Event
    from loopline.tracking.entities import ArtifactFile, Experiment, Metric, Run

__all__ = ["Client"]


def _now() -> int:
    return int(time.time() * 1000)


class Client:
    """Tracking operations against the store the settings (or ``tracking_uri``) name."""

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        settings: Settings | None = None,
        transport: Transport | None = None,
    ) -> None:
        settings = settings or get_settings()
        if tracking_uri is not None:
            settings = settings.with_(tracking_uri=tracking_uri)
        self.settings = settings
        self._transport = transport
        self._writer: BatchWriter | None = None
        self._lock = threading.Lock()
        # Params logged through this client, so a conflicting value is refused at once.
        self._params: dict[str, dict[str, str]] = {}
        # Experiments known to exist (checked once), and keys known to be valid.
        self._experiments: set[str] = set()
        self._keys: set[str] = set()

    # -- plumbing --------------------------------------------------------------------
    @property
    def transport(self) -> Transport:
        if self._transport is None:
            with self._lock:
                if self._transport is None:
                    from loopline.client.factory import open_transport

                    self._transport = open_transport(self.settings)
        return self._transport

    @property
    def writer(self) -> BatchWriter:
        if self._writer is None:
            transport = self.transport  # outside the lock: it takes the lock itself
            with self._lock:
                if self._writer is None:
                    self._writer = BatchWriter(transport, interval=self.settings.flush_interval)
        return self._writer

    def flush(self) -> None:
        """Write every buffered point now; raises the error of any failed write."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Store what is buffered and release the transport; raises a pending write error."""
        writer, self._writer = self._writer, None
        try:
            if writer is not None:
                writer.close()
        finally:
            if self._transport is not None:
                self._transport.close()
                self._transport = None

    def _check_key(self, key: str, what: str) -> None:
        if key not in self._keys:
            from loopline.tracking.service import check_key

            check_key(key, what)
            self._keys.add(key)

    def _require_experiment(self, experiment_id: str) -> None:
        """Refuse an unknown or deleted experiment now, not at the first background write."""
        if experiment_id in self._experiments:
            return
        from loopline.errors import InvalidStateError

        exp = self.transport.get_experiment(experiment_id)
        if exp.lifecycle_stage != "active":
            raise InvalidStateError(
                f"experiment {experiment_id} is deleted; runs cannot be created in it",
                hint=f"restore it with `loopline experiments restore {experiment_id}`",
            )
        self._experiments.add(experiment_id)

    def _read(self) -> Transport:
        """The transport, after buffered writes are stored (reads see your writes)."""
        self.flush()
        return self.transport

    # -- experiments ---------------------------------------------------------------
    def create_experiment(
        self,
        name: str,
        *,
        description: str = "",
        tags: dict[str, str] | None = None,
        artifact_location: str | None = None,
    ) -> str:
        return self.transport.create_experiment(
            name, description=description, tags=tags, artifact_location=artifact_location
        )

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.transport.get_experiment(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.transport.get_experiment_by_name(name)

    def search_experiments(
        self, *, view: str = "active", name_like: str | None = None
    ) -> list[Experiment]:
        return self.transport.list_experiments(view=view, name_like=name_like)

    def update_experiment(
        self, experiment_id: str, *, name: str | None = None, description: str | None = None
    ) -> None:
        self.transport.update_experiment(str(experiment_id), name=name, description=description)

    def delete_experiment(self, experiment_id: str) -> None:
        self._read().delete_experiment(str(experiment_id))

    def restore_experiment(self, experiment_id: str) -> None:
        self.transport.restore_experiment(str(experiment_id))

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self.transport.set_experiment_tag(str(experiment_id), key, str(value))

    # -- runs ----------------------------------------------------------------------
    def new_run(
        self,
        experiment_id: str,
        *,
        run_name: str | None = None,
        tags: dict[str, str] | None = None,
        parent_run_id: str | None = None,
        start_time: int | None = None,
    ) -> RunInfo:
        """Queue the creation of a run (stored with the next batch) and return its info."""
        from loopline.tracking.context import run_context_tags
        from loopline.tracking.names import random_run_name

        experiment_id = str(experiment_id)
        self._require_experiment(experiment_id)
        if run_name:
            from loopline.errors import LimitExceededError
            from loopline.tracking.service import LIMITS

            if len(run_name) > LIMITS.run_name:
                raise LimitExceededError(
                    f"run name is {len(run_name)} characters; the limit is {LIMITS.run_name}"
                )
        run_id = uuid.uuid4().hex
        info = RunInfo(
            run_id=run_id,
            experiment_id=experiment_id,
            run_name=run_name or random_run_name(),
            status=RunStatus.RUNNING.value,
            start_time=start_time or _now(),
            end_time=None,
            user_id=self.settings.user,
            artifact_uri=f"runs:/{run_id}",
            parent_run_id=parent_run_id,
        )
        writer = self.writer
        writer.raise_pending()
        writer.new_run(
            NewRun(
                run_id=run_id,
                experiment_id=info.experiment_id,
                run_name=info.run_name,
                start_time=info.start_time,
                user_id=info.user_id,
                parent_run_id=parent_run_id,
            )
        )
        all_tags = run_context_tags(self.settings.user)
        if parent_run_id:
            all_tags["loopline.parentRunId"] = parent_run_id
        all_tags.update(tags or {})
        for key, value in all_tags.items():
            self._check_tag(key, str(value))
        for key, value in all_tags.items():
            writer.put((TAG, run_id, key, str(value)))
        self._params[run_id] = {}
        return info

    def create_run(
        self,
        experiment_id: str,
        *,
        run_name: str | None = None,
        tags: dict[str, str] | None = None,
        parent_run_id: str | None = None,
    ) -> RunInfo:
        """Create a run and store it before returning."""
        info = self.new_run(
            experiment_id, run_name=run_name, tags=tags, parent_run_id=parent_run_id
        )
        self.flush()
        return info

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        *,
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        if key not in self._keys:
            self._check_key(key, "metric")
        writer = self.writer
        if writer.error is not None:
            writer.raise_pending()
        writer.metric(run_id, key, float(value), int(timestamp or _now()), int(step or 0))

    def log_param(self, run_id: str, key: str, value: Any) -> str:
        """Log a param; a different value for a param already logged is refused at once."""
        from loopline.tracking.service import LIMITS, check_value

        text = _param_text(value)
        self._check_key(key, "param")
        check_value(text, LIMITS.param_value, "param", key)
        known = self._params.setdefault(run_id, {})
        prior = known.get(key)
        if prior is not None and prior != text:
            from loopline.tracking.store import ParamConflictError

            raise ParamConflictError([(run_id, key, prior, text)])
        writer = self.writer
        writer.raise_pending()
        if prior is None:
            known[key] = text
            writer.put((PARAM, run_id, key, text))
        return text

    def _check_tag(self, key: str, text: str) -> None:
        from loopline.tracking.service import LIMITS, check_value

        self._check_key(key, "tag")
        check_value(text, LIMITS.tag_value, "tag", key)

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        text = str(value)
        self._check_tag(key, text)
        writer = self.writer
        writer.raise_pending()
        writer.put((TAG, run_id, key, text))

    def delete_tag(self, run_id: str, key: str) -> None:
        self._check_key(key, "tag")
        writer = self.writer
        writer.raise_pending()
        writer.put((DELETE_TAG, run_id, key))

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Iterable[tuple[str, float, int, int]] = (),
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
    ) -> None:
        """Log many values at once; ``metrics`` are (key, value, timestamp, step) tuples."""
        for key, value in (params or {}).items():
            self.log_param(run_id, key, value)
        for key, value in (tags or {}).items():
            self.set_tag(run_id, key, value)
        for key, value, timestamp, step in metrics:
            self.log_metric(run_id, key, value, step=step, timestamp=timestamp)

    def set_terminated(
        self,
        run_id: str,
        status: str = "FINISHED",
        end_time: int | None = None,
        *,
        wait: bool = True,
    ) -> None:
        """End a run and store everything logged to it.

        With ``wait=False`` the writer starts storing at once but the call returns
        without waiting (the fluent ``end_run`` does this: runs that end in quick
        succession then share transactions); ``flush()`` waits, and so does any read.
        """
        try:
            status = RunStatus(status).value
        except ValueError:
            raise InvalidArgumentError(
                f"unknown run status {status!r}",
                hint="use FINISHED, FAILED or KILLED",
            ) from None
        writer = self.writer
        writer.update(RunUpdate(run_id, status=status, end_time=end_time or _now()))
        self._params.pop(run_id, None)
        if wait:
            self.flush()
        else:
            writer.raise_pending()
            writer.wake()

    def update_run(
        self, run_id: str, *, status: str | None = None, run_name: str | None = None
    ) -> None:
        self.writer.update(RunUpdate(run_id, status=status, run_name=run_name))
        self.flush()

    def get_run(self, run_id: str) -> Run:
        return self._read().get_run(run_id)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        return self._read().metric_history(run_id, key)

    def delete_run(self, run_id: str) -> None:
        self._read().delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self._read().restore_run(run_id)

    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        *,
        view: str = "active",
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> tuple[list[Run], str | None]:
        """One page of runs and the token of the next page (None on the last)."""
        return self._read().search_runs(
            [str(e) for e in experiment_ids],
            filter_string=filter_string or None,
            order_by=order_by,
            view=view,
            max_results=max_results,
            page_token=page_token,
        )

    def search_all_runs(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        *,
        view: str = "active",
        max_results: int = 100_000,
    ) -> list[Run]:
        """Every matching run up to ``max_results``, following page tokens."""
        found: list[Run] = []
        token: str | None = None
        while len(found) < max_results:
            page, token = self.search_runs(
                experiment_ids,
                filter_string,
                order_by,
                view=view,
                max_results=min(10_000, max_results - len(found)),
                page_token=token,
            )
            found.extend(page)
            if token is None:
                break
        return found

    def search_runs_df(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        *,
        view: str = "active",
        max_results: int = 100_000,
    ) -> pd.DataFrame:
        from loopline.tracking.frame import runs_to_frame

        transport = self._read()
        fast = getattr(transport, "search_frame", None)
        if fast is not None:  # the embedded store builds the frame without Run objects
            frame: pd.DataFrame = fast(
                [str(e) for e in experiment_ids],
                filter_string=filter_string or None,
                order_by=order_by,
                view=view,
                max_results=max_results,
            )
            return frame
        return runs_to_frame(
            self.search_all_runs(
                experiment_ids, filter_string, order_by, view=view, max_results=max_results
            )
        )

    # -- artifacts -----------------------------------------------------------------
    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        path = Path(local_path)
        if not path.is_file():
            raise NotFoundError(f"{path} is not a file", hint="use log_artifacts() for a folder")
        dest = f"{artifact_path.strip('/')}/{path.name}" if artifact_path else path.name
        self._read().put_artifact(run_id, dest, path)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        root = Path(local_dir)
        if not root.is_dir():
            raise NotFoundError(f"{root} is not a folder", hint="use log_artifact() for a file")
        transport = self._read()
        prefix = artifact_path.strip("/") + "/" if artifact_path else ""
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            transport.put_artifact(run_id, prefix + file.relative_to(root).as_posix(), file)

    def log_bytes(self, run_id: str, data: bytes, artifact_file: str) -> None:
        self._read().put_artifact(run_id, artifact_file, data)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.log_bytes(run_id, text.encode(), artifact_file)

    def log_dict(self, run_id: str, dictionary: dict[str, Any], artifact_file: str) -> None:
        if artifact_file.endswith((".yaml", ".yml")):
            import yaml

            text = yaml.safe_dump(dictionary, sort_keys=False)
        else:
            text = json.dumps(dictionary, indent=2, default=str)
        self.log_text(run_id, text, artifact_file)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        """Save a matplotlib figure (format from the file extension) as an artifact."""
        import io

        buf = io.BytesIO()
        fmt = artifact_file.rpartition(".")[2] or "png"
        figure.savefig(buf, format=fmt)
        self.log_bytes(run_id, buf.getvalue(), artifact_file)

    def list_artifacts(self, run_id: str, path: str = "") -> list[ArtifactFile]:
        return self._read().list_artifacts(run_id, path)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        return self._read().read_artifact(run_id, path)

    def download_artifacts(
        self, run_id: str, path: str = "", dst_path: str | os.PathLike[str] | None = None
    ) -> Path:
        import tempfile

        dest = (
            Path(dst_path) if dst_path is not None else Path(tempfile.mkdtemp(prefix="loopline-"))
        )
        return self._read().download_artifacts(run_id, path, dest)

    # -- events --------------------------------------------------------------------
    def events(
        self, *, after_id: int = 0, kinds: list[str] | None = None, limit: int = 1000
    ) -> list[Event]:
        return self._read().events(after_id=after_id, kinds=kinds, limit=limit)


def _param_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)
