"""Integration level: real RabbitMQ (a fresh vhost per test) and real FerretDB (a fresh
database per test), with services run in-process by nameko's `container_factory` and
`runner_factory`. Faults are injected for real: a TCP proxy cut between a service and the
broker, a relay stopped between publish and removal, handlers that raise."""
