"""Running the service: :func:`serve` starts uvicorn with ``workers`` processes, each of which
builds its app with :func:`create_app_from_env` from the settings ``serve`` passed on.

This is the service's process entry point (like the CLI), so it, and only it, gives the
service's loggers a handler.
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI

from faceprint import settings as env
from faceprint.service.app import create_app
from faceprint.service.settings import Settings

logger = logging.getLogger(__name__)

#: What each uvicorn worker process imports and calls.
APP_FACTORY = "faceprint.service.server:create_app_from_env"
#: The access log (one JSON line a request) and the service's errors with tracebacks.
SERVICE_LOGGERS = ("faceprint.service.access", "faceprint.service")


def configure_logging(level: str = "info") -> None:
    """One JSON line per request on stderr (``faceprint.service.access``), errors with tracebacks."""
    for name in SERVICE_LOGGERS:
        log = logging.getLogger(name)
        if not log.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(message)s" if name.endswith("access") else
                                                   "%(asctime)s %(levelname)s %(name)s: %(message)s"))
            log.addHandler(handler)
            log.propagate = False
        log.setLevel(level.upper())


def create_app_from_env() -> FastAPI:
    """The app for the settings ``faceprint serve`` passed in ``$FACEPRINT_SERVICE_SETTINGS``
    (what each uvicorn worker runs)."""
    settings = Settings.from_environment()
    configure_logging(settings.log_level)
    return create_app(settings)


def serve(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """Run the service on ``host:port`` with ``workers`` processes until it is stopped.

    The settings reach the worker processes as JSON in ``$FACEPRINT_SERVICE_SETTINGS``: uvicorn
    starts them from an import string (:data:`APP_FACTORY`) and cannot pass them an object.
    """
    import uvicorn  # only needed to run the server, not to build the app

    os.environ[env.SERVICE_SETTINGS] = settings.to_json()
    logger.info("serving %s on %s:%d with %d worker(s)", settings.gallery, host, port, workers)
    uvicorn.run(
        APP_FACTORY, factory=True, host=host, port=port, workers=workers,
        log_level=settings.log_level, access_log=False, server_header=False, proxy_headers=False,
    )
