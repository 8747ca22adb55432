"""The web page (``/``) and its static files (``/static``), served from the package; no key
is needed to load them (the page asks for one and sends it with each API call)."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parents[1] / "static"

router = APIRouter()


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")


def mount_static(app: FastAPI) -> None:
    """``/static``: a mount, which a router cannot carry into the app."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
