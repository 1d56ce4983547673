"""Builds the web UI's assets into the wheel when they are missing.

Hatch runs this hook (``[tool.hatch.build.targets.wheel.hooks.custom]`` in
pyproject.toml) before it packs the wheel: with ``src/loopline/server/static/``
absent it runs ``npm ci`` and ``npm run build`` in ``ui/``, so people who
``pip install`` the wheel need no node. The assets are build output, not sources:
git ignores them and the wheel's ``artifacts`` setting takes them in.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

STATIC = Path("src/loopline/server/static")
UI = Path("ui")


class UiAssetsHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        # An editable install serves the assets from the source tree (`make ui` builds them).
        if version == "editable" or (root / STATIC / "index.html").is_file():
            return
        if not (root / UI / "package.json").is_file():
            # An sdist without ui/ sources: the server runs without its UI and says so.
            self.app.display_warning("ui/ is missing: the wheel carries no web UI")
            return
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(
                "building loopline's web UI needs node and npm (20 or newer): install them, "
                "or build the assets elsewhere with `make ui` and copy src/loopline/server/static"
            )
        self.app.display_info("building the web UI (npm ci && npm run build)")
        for step in (["ci", "--no-audit", "--no-fund"], ["run", "build"]):
            subprocess.run([npm, *step], cwd=root / UI, check=True)
