"""Errors of the FL zone; each carries the HTTP status the server answers with."""
from __future__ import annotations

from ledger_node.errors import GridMartError


class FLError(GridMartError):
    """A federated-learning request or step cannot proceed; the message says why."""

    status = 400


class Refused(FLError):
    """Bad input from a client: refused, the task and round go on."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


class HEError(Refused):
    """A ciphertext or HE context is malformed or belongs to another context."""
