"""Shared test helpers (real services started by the test session)."""
