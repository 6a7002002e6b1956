"""The Dealflow kit: the small set of parts every service shares.

config, MongoDB store provider, CloudEvents envelope and catalog, outbox relay,
reliable (retrying, dead-lettering, idempotent) event consumption, HTTP helpers and
Prometheus helpers. What only one service needs lives in that service.
"""
