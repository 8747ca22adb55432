"""``/v1/health`` (no key) and ``/v1/models`` (any key): the service and its models."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter

from faceprint import __version__, models
from faceprint.service import schemas as S
from faceprint.service.deps import AnyKey, ServiceDep
from faceprint.service.errors import ERROR_RESPONSES

logger = logging.getLogger(__name__)

router = APIRouter(tags=["service"])


@router.get("/v1/health", response_model=S.Health)
async def health(svc: ServiceDep) -> dict[str, Any]:
    """Liveness; needs no key."""
    return {"status": "ok", "version": __version__, "model": svc.analyzer.model_id}


@router.get("/v1/models", response_model=S.ModelsOut, responses=ERROR_RESPONSES)
async def list_models(svc: ServiceDep, key: AnyKey) -> dict[str, Any]:
    """The registered models with their cards (sources, licences, calibrated thresholds)."""
    cards = await svc.db(models.list_cards)
    return {
        "models": [c.to_dict() for c in cards],
        "gallery_model": svc.gallery.model_id,
        "detector": svc.analyzer.detector_card.name,
        "embedder": svc.analyzer.model_id,
    }
