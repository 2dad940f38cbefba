"""Puts the built dashboard (`frontend/dist`) into the sdist and the wheel as `tasklens/dashboard`,
so `pip install "tasklens[server]" && tasklens serve` serves it outside the checkout.

From the checkout the hook takes `../frontend/dist`; from an sdist (where `uv build` builds the
wheel) the copy the sdist carries under `src/tasklens/dashboard`. Without either, the build
fails: a wheel with no dashboard would serve only a placeholder page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGED = Path("src/tasklens/dashboard")


class DashboardBuildHook(BuildHookInterface):  # type: ignore[misc,type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version == "editable":
            return  # development: api/spa.py serves the checkout's frontend/dist itself
        root = Path(self.root)
        checkout = root.parent / "frontend" / "dist"
        if (checkout / "index.html").is_file():
            target = PACKAGED if self.target_name == "sdist" else Path("tasklens/dashboard")
            build_data["force_include"][str(checkout)] = str(target)
        elif not (root / PACKAGED / "index.html").is_file():
            raise RuntimeError(
                f"tasklens: no built dashboard at {checkout} (nor {PACKAGED} of an sdist): "
                "build it first with `./dev install-frontend` (cd frontend && npm run build)"
            )
