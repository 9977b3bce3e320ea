"""Errors GridMart raises on purpose. Each message says what to do next."""
from __future__ import annotations


class GridMartError(Exception):
    """Base class: the CLI prints the message as one line and exits 1."""


class ConfigError(GridMartError):
    """A setting or a required tool is missing or wrong."""


class ChainUnavailable(GridMartError):
    """The JSON-RPC endpoint cannot be reached."""


class ContractRevert(GridMartError):
    """A transaction or call reverted; carries the custom error's name and args."""

    def __init__(self, name: str, args: tuple = (), message: str | None = None):
        self.error_name = name
        self.error_args = tuple(args)
        super().__init__(message or f"contract reverted: {name}{self.error_args if args else ''}")


class WalletError(GridMartError):
    """A keystore cannot be found or opened."""


class ContentError(GridMartError):
    """The content store cannot store or return an artifact."""


class IntegrityError(ContentError):
    """Bytes read back do not hash to their content id."""
