"""Errors meant for people: each says what is wrong and, where one exists, how to fix it.

The CLI prints them and exits 2; the web service turns them into 4xx responses. Anything
else that escapes is a bug.
"""

from __future__ import annotations


class TrenvError(Exception):
    status_code = 400

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} {fix}" if fix else problem)


class NotFound(TrenvError):
    status_code = 404


class Conflict(TrenvError):
    status_code = 409


class Invalid(TrenvError):
    status_code = 422


class Forbidden(TrenvError):
    status_code = 403


class TooMany(TrenvError):
    """A limit per period is used up (the egress meter's hour): retry after it resets."""

    status_code = 429
