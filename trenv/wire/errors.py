"""How a body that fails its wire model is described: one sentence per wrong field.

The web API answers an invalid body with ``{"problem": validation_problem(...), "fix":
VALIDATION_FIX}`` (status 400); a client in the container that checks the same body with the
same model before sending it raises the same words, so the researcher reads one message
whichever end noticed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

VALIDATION_FIX = "See the API description at api/docs."


def validation_problem(errors: Iterable[Mapping[str, Any]]) -> str:
    """``"rho: Input should be a valid number; ..."`` from pydantic's (or FastAPI's) errors;
    FastAPI's leading ``body`` in an error's location is left out."""
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return "; ".join(parts)
