"""Exceptions raised by retro.

The class tree:

    RetroError                  base; the CLI turns any of these into one line and exit code 2
    ├── ConfigError             bad settings, flags or incident.yaml values
    ├── MissingCredential       a token or key is not set
    ├── BundleError(path)       a bundle file is malformed, has the wrong shape or bad times
    ├── ConnectorError(source)  a live API answered with an error
    ├── EngineError             a draft engine failed (LLM errors, invalid output)
    └── StoreError              the similarity index or its database failed

Every message says what went wrong, where, and what to do next.
"""

from __future__ import annotations

from pathlib import Path


class RetroError(Exception):
    """Base class for errors that retro reports as one line with exit code 2."""

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}; {self.hint}"
        return self.message


class ConfigError(RetroError):
    """A setting, flag or incident.yaml value is invalid."""


class MissingCredential(RetroError):
    """A token needed for a live API is not set."""

    def __init__(self, service: str, env_var: str, *, key_name: str | None = None) -> None:
        key = key_name or service.lower()
        super().__init__(
            f"No {service} token",
            hint=f"set {env_var} or run `retro keys set {key}`",
        )
        self.service = service
        self.env_var = env_var


class BundleError(RetroError):
    """A bundle file is malformed, has the wrong shape or holds unusable values."""

    def __init__(
        self,
        path: Path | str,
        message: str,
        *,
        record: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = str(path) if record is None else f"{path} {record}"
        super().__init__(f"{where}: {message}", hint=hint)
        self.path = str(path)
        self.record = record


class ConnectorError(RetroError):
    """A live source API failed or refused a request."""

    def __init__(self, source: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"{source}: {message}", hint=hint)
        self.source = source


class EngineError(RetroError):
    """A draft engine could not produce a postmortem."""


class StoreError(RetroError):
    """The similarity index or its database failed."""
