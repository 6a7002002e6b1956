"""Errors any service may raise; kit.http maps each to one problem+json status once."""


class DealflowError(Exception):
    status = 500
    title = "Internal error"

    def __init__(self, detail=None, **extra):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class NotFound(DealflowError):
    status = 404
    title = "Not found"


class Conflict(DealflowError):
    status = 409
    title = "Conflict"


class PreconditionFailed(DealflowError):
    status = 412
    title = "Precondition failed"


class PreconditionRequired(DealflowError):
    status = 428
    title = "Precondition required"


class Invalid(DealflowError):
    """Input the schema accepted but the rules do not; `errors` maps field -> messages."""

    status = 400
    title = "Invalid request"


class Unauthorized(DealflowError):
    status = 401
    title = "Unauthorized"


class Forbidden(DealflowError):
    status = 403
    title = "Forbidden"


class Unavailable(DealflowError):
    status = 503
    title = "Service unavailable"


class PayloadTooLarge(DealflowError):
    status = 413
    title = "Content too large"


class UriTooLong(DealflowError):
    status = 414
    title = "URI too long"
