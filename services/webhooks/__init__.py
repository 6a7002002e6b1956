"""Webhooks for integrators (issue 16): the pure rules first; the service (subscriptions
through an admin API, deliveries from the replay streams) is built on them.

Not in notify: notify tells people through their channels and is keyed per recipient;
webhooks serve systems, must keep per-subscription order, retry for a day and replay a
time range from the stream, and call out to URLs integrators choose (the allow-list). A
slow integrator must not hold up a rep's reminder, so they run and scale apart.
"""
