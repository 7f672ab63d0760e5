"""JSON API routers, each mounted by trenv.web.app.include_routers under ``<prefix>api``."""
