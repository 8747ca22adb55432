"""FastAPI dependencies of the routes: the process's :class:`Service` (with its settings), and the
API key a route needs (authenticated, scope-checked and rate-limited).

Scopes: ``recognize`` (detect, embed, verify, identify), ``manage`` (subjects and their faces),
``admin`` (keys; implies the other two). ``/v1/models`` takes a key of any scope.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from faceprint.errors import ForbiddenError
from faceprint.service.auth import ApiKey
from faceprint.service.middleware import API_KEY_KEY, KEY_ID_KEY
from faceprint.service.state import Service

logger = logging.getLogger(__name__)

# auto_error=False: a missing key is answered by KeyStore.authenticate, with the envelope
bearer_scheme = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY")
header_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: KEY")


def get_service(request: Request) -> Service:
    """The service state :func:`faceprint.service.create_app` put on the app."""
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


def require(scope: str | None) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency: the request's API key, which must allow ``scope`` (None: any valid key).

    401 without a valid key, 403 without the scope, 429 over the key's rate limit. The
    middleware has authenticated the key already, before the body was read, and left its
    record in the request's state; only an app run without it authenticates here. The key id
    goes to the request's state for the access log (never the key itself).
    """

    async def check(
        request: Request,
        svc: ServiceDep,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
        header_key: Annotated[str | None, Depends(header_scheme)],
    ) -> ApiKey:
        state = request.scope.setdefault("state", {})
        key = state.get(API_KEY_KEY)
        if not isinstance(key, ApiKey):
            presented = bearer.credentials if bearer is not None else header_key
            key = await svc.db(svc.keys.authenticate, presented)
            state[API_KEY_KEY], state[KEY_ID_KEY] = key, key.key_id
        if scope is not None and not key.allows(scope):
            raise ForbiddenError(f"this key has scopes {', '.join(key.scopes)}; this operation needs {scope!r}",
                                 details={"needed": scope, "scopes": list(key.scopes)})
        svc.limiter.check(key.key_id)
        return key

    return check


RecognizeKey = Annotated[ApiKey, Depends(require("recognize"))]
ManageKey = Annotated[ApiKey, Depends(require("manage"))]
AdminKey = Annotated[ApiKey, Depends(require("admin"))]
AnyKey = Annotated[ApiKey, Depends(require(None))]
