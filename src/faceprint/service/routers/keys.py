"""``/v1/keys``: the service's API keys (scope ``admin``)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter

from faceprint.service import schemas as S
from faceprint.service.deps import AdminKey, ServiceDep
from faceprint.service.errors import ERROR_RESPONSES
from faceprint.service.parsing import StrictJSONRoute

logger = logging.getLogger(__name__)

router = APIRouter(tags=["keys"], responses=ERROR_RESPONSES, route_class=StrictJSONRoute)


@router.get("/v1/keys", response_model=S.KeyList)
async def list_keys(svc: ServiceDep, key: AdminKey) -> dict[str, Any]:
    """Every API key (never the key itself: only hashes are stored)."""
    return {"keys": [k.to_dict() for k in await svc.db(svc.keys.list)]}


@router.post("/v1/keys", status_code=201, response_model=S.KeyCreated)
async def create_key(body: S.KeyCreate, svc: ServiceDep, key: AdminKey) -> dict[str, Any]:
    """A new key; the answer is the only time the key itself is shown."""
    secret, record = await svc.db(svc.keys.create, list(body.scopes), body.name)
    return {**record.to_dict(), "key": secret}


@router.delete("/v1/keys/{key_id}", response_model=S.KeyOut,
               responses={404: {"model": S.ErrorEnvelope, "description": "no such key"}})
async def revoke_key(key_id: str, svc: ServiceDep, key: AdminKey) -> dict[str, Any]:
    """Revoke a key: it is refused from the next request on."""
    return (await svc.db(svc.keys.revoke, key_id)).to_dict()
