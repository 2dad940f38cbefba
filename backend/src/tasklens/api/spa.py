"""Serves the built React SPA from the API's own port; client-side routes reload fine."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.convertors import PathConvertor, register_url_convertor


class _NotApiPath(PathConvertor):
    """Any path but the API's, so a wrong method on an API route is a 405 from the router
    (with `Allow`), and an unknown API path a 404, instead of the SPA's shell."""

    regex = r"(?!api/|health(?:/|$)).*"


register_url_convertor("not_api", _NotApiPath())

# An installed wheel carries the built dashboard (hatch_build.py); a checkout serves its own
# frontend/dist, rebuilt by `npm run build`.
PACKAGED = Path(__file__).resolve().parents[1] / "dashboard"
CHECKOUT = Path(__file__).resolve().parents[4] / "frontend" / "dist"

DIST = PACKAGED if (PACKAGED / "index.html").is_file() else CHECKOUT

PLACEHOLDER = """<!doctype html><html><head><meta charset="utf-8"><title>TaskLens</title></head>
<body><h1>TaskLens</h1><p>The dashboard has not been built yet:
run <code>./dev up</code> (it builds <code>frontend/</code>). The API is at
<a href="/api/v1/docs">/api/v1/docs</a>.</p></body></html>"""


def mount_spa(app: FastAPI, dist: Path = DIST) -> None:
    if (dist / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=dist / "assets"), name="assets")

    @app.get("/{path:not_api}", include_in_schema=False)
    def spa(path: str) -> Response:  # sync: FastAPI runs it in a thread (file system I/O)
        candidate = (dist / path).resolve()
        if path and candidate.is_file() and candidate.is_relative_to(dist.resolve()):
            return FileResponse(candidate)
        index = dist / "index.html"
        return FileResponse(index) if index.is_file() else HTMLResponse(PLACEHOLDER)
