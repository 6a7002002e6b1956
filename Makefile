# Dealflow: `make run` brings the platform up, `make test` proves it. Both work on a fresh
# Debian machine with nothing installed by hand, and a second run skips what is there.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT := $(abspath .)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
SERVICES := leads deals quotes support metrics notify webhooks
export PYTHONPATH := $(ROOT)/services
export EVENTLET_NO_GREENDNS := yes
export DO_NOT_TRACK := 1
export PYTHONWARNINGS := ignore::DeprecationWarning,ignore::UserWarning
# pip and Go keep their caches in the usual per-user places, so a second build is quick.
export GOFLAGS := -buildvcs=false

# Infrastructure is started only where no external one is configured.
LOCAL_AMQP := $(if $(AMQP_URI),,yes)
LOCAL_MONGO := $(if $(MONGO_URI),,yes)
LOCAL_SMTP := $(if $(SMTP_HOST),,yes)

.PHONY: help deps venv infra rabbitmq ferretdb mailpit prometheus-bin run stop status test lint \
        unit integration e2e fuzz bench bench-size seed asyncapi handler-queues clean queries keys \
        token kustomize cluster cluster-stop replay

help:
	@echo "make run    - start RabbitMQ, FerretDB, Mailpit and the services (var/ holds data, logs)"
	@echo "make stop   - stop what 'make run' started"
	@echo "make test   - lint, then unit, integration and end-to-end tests"
	@echo "make fuzz   - schemathesis, all checks, many examples, against each service's OpenAPI"
	@echo "make bench  - benchmarks, as ratios to raw limits and nameko's own (BENCH_PROFILE=1: py-spy)"
	@echo "make bench-size - the benchmarks at size (a million events, 100,000 leads, idle CPU)"
	@echo "make soak   - the whole funnel under random faults for SOAK_MINUTES (default 30)"
	@echo "make seed N=100000 - a year of sales history into the running platform (its APIs)"
	@echo "make token ROLE=manager SUB=alice TEAM=east - a bearer token signed by the local key"
	@echo "make lint   - ruff"
	@echo "make replay - rebuild the metrics projections from the event streams, then switch"
	@echo "make queries - docs/queries.md: every query the services run, checked to use an index"
	@echo "make cluster - a three-node RabbitMQ cluster on 5681-5683 (var/cluster); cluster-stop"

# --- set-up ----------------------------------------------------------------------------------
# poppler-utils: pdftotext reads the quote PDFs back in tests; fonts-wqy-zenhei: the CJK
# font the PDFs embed (TrueType outlines, which reportlab can subset)
APT_PACKAGES := rabbitmq-server prometheus poppler-utils fonts-wqy-zenhei
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@# Debian's packages start nothing here (no systemd); our scripts run them under var/.
	@command -v go >/dev/null || { echo "Go is required to build FerretDB (see README)"; exit 1; }

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

rabbitmq: deps
	@$(if $(LOCAL_AMQP),deploy/local/rabbitmq.sh start,echo "rabbitmq: using AMQP_URI")

ferretdb: deps
	@$(if $(LOCAL_MONGO),deploy/local/ferretdb.sh start,echo "mongodb: using MONGO_URI")

# the local SMTP server with an inbox (Mailpit) that notify sends to
mailpit: deps
	@$(if $(LOCAL_SMTP),deploy/local/mailpit.sh start,echo "smtp: using SMTP_HOST")

# the local identity provider's key pair (var/auth, once); services read its public half
keys: venv
	@test -s var/auth/public.pem || $(PY) -m kit.devtokens keys var/auth >/dev/null

# kustomize (var/bin), built from the Go module proxy: the deploy tests render deploy/k8s
kustomize: deps
	@deploy/local/kustomize.sh build

infra: venv rabbitmq ferretdb mailpit keys kustomize

# A three-node RabbitMQ cluster beside the single node (README "Running a RabbitMQ cluster
# locally"); the tests start their own unless this one runs. AMQP_URI for the services:
# `deploy/local/rabbitmq-cluster.sh uri`, with AMQP_QUEUE_TYPE=quorum.
cluster: deps
	@deploy/local/rabbitmq-cluster.sh start
	@echo "AMQP_URI='$$(deploy/local/rabbitmq-cluster.sh uri)' AMQP_QUEUE_TYPE=quorum"

cluster-stop:
	@deploy/local/rabbitmq-cluster.sh stop

ROLE ?= admin
SUB ?= ada
TEAM ?=
token: keys
	@$(PY) -m kit.devtokens token --role $(ROLE) --sub $(SUB) $(if $(TEAM),--team $(TEAM))

# --- run ---------------------------------------------------------------------------------------
run: infra
	@deploy/local/services.sh start $(SERVICES)
	@deploy/local/prometheus.sh start
	@$(if $(LOCAL_SMTP),deploy/local/mailpit.sh address,true)

stop:
	@deploy/local/prometheus.sh stop
	@deploy/local/services.sh stop $(SERVICES)
	@deploy/local/mailpit.sh stop
	@deploy/local/ferretdb.sh stop
	@deploy/local/rabbitmq.sh stop

status:
	@deploy/local/services.sh status $(SERVICES)

# --- quality -----------------------------------------------------------------------------------
lint: venv
	@$(VENV)/bin/ruff check services tests bench

asyncapi: venv
	@$(PY) -m kit.asyncapi > docs/asyncapi.yaml

# the handler queues access.py --prune-queues keeps (after adding or removing a handler)
handler-queues: venv
	@$(PY) deploy/rabbitmq/handler_queues.py > deploy/rabbitmq/handler-queues.txt

unit: venv kustomize
	@$(PY) -m pytest tests/unit -q

integration: infra
	@$(PY) -m pytest tests/integration -q

e2e: infra
	@$(PY) -m pytest tests/e2e -q

# `make test` runs the same test with few examples; FUZZ_SEED=<n> picks another seed
fuzz: infra
	@FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-200} $(PY) -m pytest tests/integration/test_openapi_fuzz.py -q

test: lint infra
	@$(PY) -m pytest tests -q

queries: infra
	@DEALFLOW_QUERY_INVENTORY=docs/queries.md $(PY) -m pytest tests/integration -q

bench: infra
	@$(PY) -m bench

# the figures at size (a million events, 100,000 leads, idle CPU): beyond bench's ten minutes
bench-size: infra
	@$(PY) -m bench metrics_size search idle

# the whole-platform funnel at a steady rate under random faults for SOAK_MINUTES (default
# 30): lost, doubled and late events and memory per service in var/soak-report.{json,md};
# never part of `make test`
.PHONY: soak
soak: infra
	@$(PY) -m tests.e2e.soak

# a year of leads (a fifth converted into deals) through the running platform's public APIs;
# LEADS_URL / DEALS_URL point elsewhere, SEED_TOKEN authenticates as an admin
N ?= 100000
seed: venv
	@$(PY) -m bench.seed -n $(N)

# metrics.rebuild in the foreground, as the metrics user (it reads the producers' streams);
# the running metrics service follows the switch by itself
replay: venv
	@AMQP_URI="$${AMQP_URI:-amqp://metrics:$$(cat var/secrets/rabbitmq/metrics.password)@127.0.0.1:$${RABBITMQ_NODE_PORT:-5672}/}" \
	  $(PY) -m metrics.rebuild services/metrics/config.yml

clean: stop cluster-stop
	rm -rf var
