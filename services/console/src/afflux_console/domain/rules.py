"""What a staff command can be refused for, each naming what to fix."""

from __future__ import annotations


class RuleViolation(ValueError):
    """A value the rules refuse (422, naming the field)."""

    def __init__(self, field: str, message: str, code: str = "invalid_value") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = f"{field}: {message}"
        self.code = code


class Refused(Exception):
    """A command the current state refuses (409)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Conflict(Refused):
    """The value is taken (an email another user has)."""
