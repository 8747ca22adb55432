"""``create_app(settings)``: the FastAPI app that ``faceprint serve`` runs, assembled from the
service's parts.

Thin like the CLI: each route parses its input, calls the library (Analyzer, Gallery) in a
worker thread, and formats the library's ``to_dict()`` results. No face logic lives here.

- :mod:`~faceprint.service.settings`: the :class:`Settings`
- :mod:`~faceprint.service.state`: the process's :class:`Service` (gallery, models, keys, pool)
- :mod:`~faceprint.service.middleware`: request ids, body limit, access log, CORS
- :mod:`~faceprint.service.errors`: error code -> HTTP status, the error envelope
- :mod:`~faceprint.service.parsing`: multipart and JSON input
- :mod:`~faceprint.service.deps`: the dependencies (service state, API key and scope)
- :mod:`~faceprint.service.sessions`: the live sessions (webcam streams, liveness checks)
- :mod:`~faceprint.service.routers`: one router per resource
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from faceprint import __version__
from faceprint.service.errors import install_error_handlers
from faceprint.service.middleware import install_middleware
from faceprint.service.routers import keys, liveness, models, recognition, streams, subjects, videos, web
from faceprint.service.sessions import LiveSessions
from faceprint.service.settings import Settings
from faceprint.service.state import Service

logger = logging.getLogger(__name__)

DESCRIPTION = (
    "Face detection, verification and identification over HTTP. Every decision reports the "
    "similarity, the threshold used and the false-accept rate it stands for. Errors: "
    '`{"error": {"code", "message", "details"}, "request_id"}`; every response has `X-Request-ID`.'
)


def create_app(settings: Settings, service: Service | None = None) -> FastAPI:
    """The FastAPI app for ``settings`` (opens the gallery now, loads the models in the background).

    ``service``: the process state to use instead of opening one from ``settings``.
    """
    svc = service or Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc.pool.submit(svc.warm_up)
        try:
            yield
        finally:
            svc.close()

    app = FastAPI(
        title="faceprint",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        # /docs is web.docs: Swagger UI served from this machine (FastAPI's own takes it from a CDN)
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = svc
    app.state.sessions = LiveSessions(settings)
    install_middleware(app, settings)
    install_error_handlers(app)
    app.include_router(web.router)
    web.mount_static(app)
    for router in (models.router, recognition.router, videos.router, streams.router, liveness.router,
                   subjects.router, keys.router):
        app.include_router(router)
    return app
