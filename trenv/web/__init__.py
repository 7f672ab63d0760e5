"""The trenv web service, managed by JupyterHub: JSON API (OpenAPI) + server-rendered pages.

Layout (see docs/web.md):

    app.py         create_app(settings, identity) and include_routers(): the one place routers
                   are plugged in; error handling and security headers
    auth.py        WebUser, the Identity protocol, HubIdentity (JupyterHub) and StaticIdentity
    deps.py        FastAPI dependencies: current_user, require_scope(...), db_session, settings
    oauth.py       browser login through the hub, logout
    templating.py  render(request, "page.html", context) and the header's navigation
    api/           JSON routers, mounted at <prefix>api
    pages/         HTML routers, mounted at <prefix>
    templates/     Jinja2 templates extending base.html
    static/        trenv.css
"""
