"""Errors the HTTP layer turns into clear 4xx JSON answers."""

from __future__ import annotations


class ContactCenterError(Exception):
    status = 400
    code = "bad-request"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(ContactCenterError):
    """The request could not be read at all (not JSON, wrong shape)."""

    status = 400
    code = "bad-request"


class InvalidInput(ContactCenterError):
    status = 422
    code = "invalid"


class NotFound(ContactCenterError):
    status = 404
    code = "not-found"


class Conflict(ContactCenterError):
    status = 409
    code = "conflict"


class Forbidden(ContactCenterError):
    status = 403
    code = "forbidden"


class Unauthorized(ContactCenterError):
    status = 401
    code = "unauthorized"


class Unavailable(ContactCenterError):
    status = 503
    code = "unavailable"
