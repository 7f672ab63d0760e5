"""Errors raised on bad input: each names the problem and the fix."""


class DisclosureInputError(ValueError):
    """The data, the arguments or the policy cannot be checked as given."""
