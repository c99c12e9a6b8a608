"""Keeping API keys out of everything we print or store.

Keys come only from environment variables named in model configs. Whatever text may carry one
(error messages, response bodies kept as ``raw``, logs) goes through :func:`redact` first, and a
key held in memory is wrapped in :class:`Secret` so a stray ``repr`` cannot leak it.
"""

from __future__ import annotations

import os
from typing import Iterable

REDACTED = "[REDACTED]"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of every non-empty secret replaced by ``[REDACTED]``.

    Longer secrets go first so that a secret containing another is removed whole.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


class Secret:
    """A secret value whose ``str`` and ``repr`` never show it; call :meth:`reveal` to use it."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str = "") -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.source or '?'}={REDACTED})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class MissingSecretError(RuntimeError):
    """The environment variable that should hold a secret is unset or empty."""


def secret_from_env(var: str) -> Secret:
    """The secret held by environment variable ``var``; an unset or empty variable is an error."""
    value = os.environ.get(var)
    if not value:
        raise MissingSecretError(f"environment variable {var} is not set (it must hold the secret)")
    return Secret(value, source=var)
