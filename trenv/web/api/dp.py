"""The server-side differential privacy API (filled in below)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/dp", tags=["differential privacy"])
