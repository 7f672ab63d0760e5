# JupyterHub configuration for trenv: thin on purpose; everything lives in trenv.hub.hubconfig.
# Run with: jupyterhub -f hub_config/jupyterhub_config.py (or `trenv hub start`).
from trenv.config import get_settings
from trenv.hub.hubconfig import configure

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - provided by JupyterHub
configure(c, get_settings())
