"""The HTTP service (``faceprint serve``): FastAPI app, API keys, limits and the web page."""

from faceprint.service.app import Settings, create_app

__all__ = ["Settings", "create_app"]
