"""HTML dashboard: the runs overview at /, one run at /runs/{run}, one problem of a run at
/runs/{run}/problems/{id} and several runs side by side at /compare?runs=a,b.

The pages are static shells (service/static) whose scripts fetch the JSON API and redraw
every few seconds, so no data is rendered here and no build step or CDN is involved. With
auth on, open a page with ``?token=...``: the script keeps the token in sessionStorage,
removes it from the address bar and sends it as ``Authorization: Bearer``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from service.api.schemas import NAME_PATTERN

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# The shells never change while the service runs, but keep browsers from pinning old copies.
NO_CACHE = {"Cache-Control": "no-cache"}

router = APIRouter(tags=["dashboard"], include_in_schema=False)


@router.get("/")
def run_list_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers=NO_CACHE)


@router.get("/runs/{run}")
def run_page(run: str = PathParam(pattern=NAME_PATTERN)) -> FileResponse:
    return FileResponse(STATIC_DIR / "run.html", headers=NO_CACHE)


@router.get("/runs/{run}/problems/{problem_id:path}")
def problem_page(problem_id: str, run: str = PathParam(pattern=NAME_PATTERN)) -> FileResponse:
    return FileResponse(STATIC_DIR / "problem.html", headers=NO_CACHE)


@router.get("/compare")
def compare_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "compare.html", headers=NO_CACHE)


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)
