"""How a delivery attempt failed: transient (retried with backoff) or permanent (the
notification is recorded failed with the reason, never retried)."""


class DeliveryFailure(Exception):
    permanent = False

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = str(reason)[:500]


class Transient(DeliveryFailure):
    """SMTP 4xx, gateway 5xx, timeouts, refused connections, rate limits of a provider."""


class Permanent(DeliveryFailure):
    """SMTP 5xx (an invalid address), a gateway's refusal of the request itself."""

    permanent = True


def from_http_status(status, what):
    """A non-2xx answer of an HTTP gateway: 5xx and 429 pass, other 4xx never will."""
    if status >= 500 or status in (408, 429):
        return Transient(f"{what} answered HTTP {status}")
    return Permanent(f"{what} answered HTTP {status}")
