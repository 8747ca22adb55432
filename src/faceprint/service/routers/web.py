"""The web page (``/``), its static files (``/static``), the icon (``/favicon.ico``) and the API's
interactive documentation (``/docs``), all served from this machine: no key is needed to load them
(the page asks for one and sends it with each API call), and none of them reaches another host.

``/docs`` is Swagger UI, whose script and stylesheet come from the ``fastapi-offline`` package
(a dependency of the ``service`` extra) rather than from a CDN, so the documentation works
offline. Its page carries its own content security policy, which allows exactly its one inline
start-up script (by hash); the web page's stricter policy (the service middleware) is unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parents[1] / "static"
#: The page's icon, an SVG file (served at ``/favicon.ico``, where browsers look for it).
FAVICON = STATIC / "favicon.svg"
#: Swagger UI's script and stylesheet as the ``fastapi-offline`` package ships them.
SWAGGER_UI = Path(str(files("fastapi_offline") / "static"))
SWAGGER_JS, SWAGGER_CSS = "swagger-ui-bundle.js", "swagger-ui.css"
#: Where ``/docs`` loads them from (this service).
DOCS_ASSETS = "/docs/assets"

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)

router = APIRouter()


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> FileResponse:
    # An SVG under the conventional name: browsers go by the content type, not the extension.
    return FileResponse(FAVICON, media_type="image/svg+xml")


def docs_csp(html: str) -> str:
    """The content security policy of the docs page ``html``: this service only, plus the
    page's own inline scripts by their SHA-256 (Swagger UI is started by one)."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html))
    return (f"default-src 'self'; script-src 'self' {hashes}; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; font-src 'self' data:; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")


@router.get("/docs", include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    """Swagger UI over ``/openapi.json``, its assets from :data:`DOCS_ASSETS`."""
    app = request.app
    root = str(request.scope.get("root_path", ""))
    swagger = get_swagger_ui_html(
        openapi_url=root + str(app.openapi_url),
        title=f"{app.title} - API documentation",
        swagger_js_url=f"{root}{DOCS_ASSETS}/{SWAGGER_JS}",
        swagger_css_url=f"{root}{DOCS_ASSETS}/{SWAGGER_CSS}",
        swagger_favicon_url=f"{root}/favicon.ico",
        # no call to the public validator's host (the badge it would draw)
        swagger_ui_parameters={"validatorUrl": None},
    )
    html = bytes(swagger.body).decode()
    return HTMLResponse(html, headers={"Content-Security-Policy": docs_csp(html)})


@router.get(DOCS_ASSETS + "/{name}", include_in_schema=False)
async def docs_asset(name: str) -> FileResponse:
    media = {SWAGGER_JS: "text/javascript", SWAGGER_CSS: "text/css"}.get(name)
    if media is None:  # only the two files the page uses, nothing else of the package's folder
        raise HTTPException(status_code=404)
    return FileResponse(SWAGGER_UI / name, media_type=media)


def mount_static(app: FastAPI) -> None:
    """``/static``: a mount, which a router cannot carry into the app."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
