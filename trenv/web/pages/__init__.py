"""Server-rendered page routers, each mounted by trenv.web.app.include_routers at ``<prefix>``."""
