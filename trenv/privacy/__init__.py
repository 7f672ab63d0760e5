"""Differential privacy: OpenDP releases and the server-side budget ledger."""
