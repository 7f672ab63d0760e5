"""Administration actions that compose the registry, the vault and the hub.

Each action here is what both the `trenv` command and the admin pages call: closing a
project (servers, workspaces, data, key), deactivating a person (and their server), what
the usage and audit pages show. Rules on single records stay in :mod:`trenv.registry`.
"""
