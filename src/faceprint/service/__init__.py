"""The HTTP service (``faceprint serve``): FastAPI app, API keys, limits and the web page.

``create_app(Settings(gallery=...))`` builds the app (for tests or another ASGI server);
``serve(settings, host=..., port=..., workers=...)`` runs it with uvicorn.
"""

from faceprint.errors import import_optional

# The service is an extra: say which one when its libraries are missing (not a bare ImportError).
for _module in ("fastapi", "uvicorn", "python_multipart"):
    import_optional(_module, "service")

from faceprint.service.app import create_app  # noqa: E402
from faceprint.service.server import serve  # noqa: E402
from faceprint.service.settings import Settings  # noqa: E402

__all__ = ["Settings", "create_app", "serve"]
