"""JupyterHub integration: the spawner, network isolation, authentication, roles and scopes."""
