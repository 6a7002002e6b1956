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


class Retryable(DealflowError):
    """A condition that passes by itself (a race lost to other writers): an event handler
    that raises it goes through the retries, where other DealflowErrors dead-letter at once."""

    status = 503
    title = "Try again later"
