"""Errors a domain or the kit may raise. They carry what went wrong (detail and extra
members such as `existing_id` or `missing_fields`), never an HTTP status: kit.http maps
each class to its status in one table."""


class DomainError(Exception):
    title = "Internal error"

    def __init__(self, detail=None, *, headers=None, **extra):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra
        # response headers the answer needs (WWW-Authenticate on 401, Retry-After on
        # 409/429/503); kit.http copies them onto the problem response
        self.headers = dict(headers or {})


# The name the services used before the domain errors lost their statuses.
DealflowError = DomainError


class NotFound(DomainError):
    title = "Not found"


class Conflict(DomainError):
    title = "Conflict"


class Contention(Conflict):
    """Writers kept racing for one entity: transient, the same request may pass later."""

    title = "Conflict"


class PreconditionFailed(DomainError):
    title = "Precondition failed"


class PreconditionRequired(DomainError):
    title = "Precondition required"


class Invalid(DomainError):
    """Input the schema accepted but the rules do not; `errors` maps field -> messages."""

    title = "Invalid request"


class Unauthorized(DomainError):
    title = "Unauthorized"


class Forbidden(DomainError):
    title = "Forbidden"


class Gone(DomainError):
    """What was valid once is no longer (an expired signed link)."""

    title = "Gone"


class TooManyRequests(DomainError):
    """A rate limit ran out; `retry_after` (seconds) goes into the Retry-After header."""

    title = "Too many requests"


class Unavailable(DomainError):
    title = "Service unavailable"


class Retryable(DomainError):
    """A condition that passes by itself: an event handler that raises it goes through the
    retries, where other domain errors dead-letter at once."""

    title = "Try again later"


class PayloadTooLarge(DomainError):
    title = "Content too large"


class UriTooLong(DomainError):
    title = "URI too long"
