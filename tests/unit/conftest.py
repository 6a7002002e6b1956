"""Unit level: pure rules and single workers. Nothing real runs here: no broker, no
database, no process; nameko's `worker_factory` replaces dependencies where a service
class is exercised."""
