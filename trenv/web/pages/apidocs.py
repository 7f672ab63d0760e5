"""``<prefix>api/docs``: the OpenAPI description rendered on the server.

Swagger UI needs scripts from a CDN, which a TRE cannot reach and the CSP forbids; this
page lists the same operations and models with no script at all.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from trenv.web.templating import render

router = APIRouter(include_in_schema=False)
METHODS = ("get", "post", "put", "patch", "delete")


@router.get("/docs", response_class=HTMLResponse)
async def api_docs(request: Request) -> HTMLResponse:
    spec: dict[str, Any] = request.app.openapi()
    operations = [
        {"method": method.upper(), "path": path, **op}
        for path, item in spec.get("paths", {}).items()
        for method, op in item.items()
        if method in METHODS
    ]
    schemas = spec.get("components", {}).get("schemas", {})
    return render(
        request,
        "apidocs.html",
        {"title": "trenv API", "spec": spec, "operations": operations, "schemas": schemas},
    )
