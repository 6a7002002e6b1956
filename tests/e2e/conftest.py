"""End-to-end level: the platform as separate `nameko run` processes (as `make run` starts
them), real RabbitMQ, FerretDB and Prometheus; HTTP in, Prometheus out."""
