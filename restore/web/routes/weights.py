"""``GET /api/v1/weights``: the names a request's ``weights`` field may take."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from restore.web.registry import registered_weights

router = APIRouter(tags=["weights"])


class RegisteredWeights(BaseModel):
    name: str
    task: str
    channels: int
    origin: str  # shipped | user (`restore weights add`)
    description: str


@router.get("/weights", response_model=list[RegisteredWeights])
def list_weights() -> list[dict]:
    """As `restore weights list`: the shipped weights, then the user's own models."""
    return registered_weights()
