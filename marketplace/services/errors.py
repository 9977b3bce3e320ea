"""Service-level errors; the API maps each to an HTTP status with its message."""
from __future__ import annotations


class ServiceError(Exception):
    status_code = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(ServiceError):
    status_code = 400


class Unauthenticated(ServiceError):
    status_code = 401


class Forbidden(ServiceError):
    status_code = 403


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409


class TooLarge(ServiceError):
    status_code = 413


class Unavailable(ServiceError):
    """The service cannot answer safely now (the chain did not confirm, or the index disagrees
    with the chain); retrying later or repairing the index helps, changing the request does not."""

    status_code = 503
