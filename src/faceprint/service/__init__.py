"""The HTTP service (``faceprint serve``): FastAPI app, API keys, limits and the web page.

``create_app(Settings(gallery=...))`` builds the app (for tests or another ASGI server);
``serve(settings, host=..., port=..., workers=...)`` runs it with uvicorn.
"""

from faceprint.service.app import create_app
from faceprint.service.server import serve
from faceprint.service.settings import Settings

__all__ = ["Settings", "create_app", "serve"]
