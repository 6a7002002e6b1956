#!/usr/bin/env python3
"""Least privilege on RabbitMQ: one user per service, allowed only its own exchange and
queues, and reads of the exchanges whose events it consumes.

What a service does on the broker, and the permission each needs:
- publishes to `<service>.events` (the outbox relay declares it): configure + write;
- declares its replayable log `<service>.events.stream` (kit.streams) and binds it to its
  own exchange: configure + write on the stream, read on its own exchange;
- consumes through nameko queues `evt-<source>-<type>--<service>.<method>`, with their
  `.retry.<n>` and `.dlq` queues (kit.consumer): configure + write + read on them;
- reads other producers' replayable logs (READS_STREAMS: metrics rebuilds its projections
  from them, webhooks delivers from them): read on `<source>.events.stream` only; metrics
  also reads its vhost's queue figures through the management API (tag `management`);
- binds those queues to `<source>.events`: read on the source exchange, and configure
  on it because kombu declares a queue's exchange before binding (an idempotent declare);
- retries a failed event by publishing to its retry queue through the default exchange,
  and declares its queues with the default exchange as their dead-letter exchange (which
  RabbitMQ checks as a write at declare time): write on `amq.default` (consumers only).
  Known gap: the default exchange reaches any queue by name, so a consumer's user could
  put a message into another service's queue. Closing it means dead-lettering through a
  per-service exchange (kit.consumer's queue arguments), which needs the existing queues
  migrated (their arguments cannot change in place).
Nothing grants write on another service's exchange: leads cannot publish `deal.*`
(tests/integration/test_broker_permissions.py proves it on a real broker).

The same rules serve every environment (standard library only):
    access.py --api http://127.0.0.1:15672 --admin-user guest --admin-password-file F \
              --vhost / --password-dir var/secrets/rabbitmq          # local (rabbitmq.sh)
    access.py --api http://rabbitmq:15672 --password-env --delete-guest   # compose, k8s Job
Passwords come from files (`<service>.password`) or from the environment
(`RABBITMQ_<SERVICE>_PASSWORD`), never from this repository; a missing one is an error.
The admin's password comes from RABBITMQ_ADMIN_PASSWORD or --admin-password-file.

`--prune-queues` also deletes the queues of event handlers the services no longer have
(an upgrade removed or renamed one): such a queue has no consumer, yet the broker routes
every matching event into it, for ever, until its disk alarm stops every publisher. The
queues kept are those of handler-queues.txt (generated from the services' code by
handler_queues.py), with their retry and dead-letter queues. A queue some consumer still
reads (an instance of the older version, during a rolling upgrade) is kept until the next
run, and so is a dead-letter queue that holds messages (inspect them first: kit.deadletters);
the broker checks both conditions as it deletes (`if-unused`, `if-empty`).
"""
import argparse
import base64
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

# which services' events each service consumes (its nameko event handlers)
CONSUMES = {
    "leads": (),
    "deals": ("leads", "quotes"),
    "quotes": ("deals", "support"),
    "support": ("deals",),
    "metrics": ("leads", "deals", "quotes", "support"),
    "notify": ("leads", "deals", "quotes", "support"),
    "webhooks": (),
}
# whose replayable logs (`<service>.events.stream`) each service reads with a plain
# consumer (kit.streams): read on the stream is all that takes (no declare, no bind)
READS_STREAMS = {
    "metrics": ("leads", "deals", "quotes", "support"),
    "webhooks": ("leads", "deals", "quotes", "support", "notify", "webhooks"),
}
SERVICES = tuple(CONSUMES)
HANDLER_QUEUES = Path(__file__).with_name("handler-queues.txt")
# a handler's queue as nameko names it, and the retry and dead-letter queues kit.consumer
# adds to it (a method name has no dot, so the suffix is unambiguous)
HANDLER_QUEUE = re.compile(
    r"(?P<main>evt-[a-z]+-[a-z_.]+--(?P<service>[a-z]+)\.[A-Za-z0-9_]+)"
    r"(?P<suffix>\.retry\.[0-9]+|\.dlq)?")
# management API tags: metrics reads its vhost's stream lengths there (its /metrics)
TAGS = {"metrics": "management"}


def permissions(service):
    """{"configure", "write", "read"} regexes for the service's user."""
    own_exchange = rf"{re.escape(service)}\.events"
    own_stream = rf"{re.escape(service)}\.events\.stream"
    own_queues = rf"evt-[a-z]+-[a-z_.]+--{re.escape(service)}\.[A-Za-z0-9_.]+"
    sources = [rf"{re.escape(s)}\.events" for s in CONSUMES[service]]
    streams = [rf"{re.escape(s)}\.events\.stream" for s in READS_STREAMS.get(service, ())]
    retry = [r"amq\.default"] if sources else []

    def anchored(*parts):
        return "^(" + "|".join(parts) + ")$" if parts else "^$"

    return {
        "configure": anchored(own_exchange, own_stream, *([own_queues] if sources else []),
                              *sources),
        "write": anchored(own_exchange, own_stream, *([own_queues] if sources else []),
                          *retry),
        "read": anchored(own_exchange, *([own_queues] if sources else []), *sources,
                         *streams),
    }


class Management:
    """The few calls of the management HTTP API this needs."""

    def __init__(self, api, user, password):
        self.api = api.rstrip("/")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def url(self, *path, query=""):
        return (self.api + "/api/" + "/".join(urllib.parse.quote(p, safe="") for p in path)
                + (f"?{query}" if query else ""))

    def call(self, method, *path, body=None, patience=60):
        """One call; the API may still be starting (a fresh node): refused connections are
        tried again for `patience` seconds."""
        url = self.url(*path)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers=self.headers)
        deadline = time.monotonic() + patience
        while True:
            try:
                with urllib.request.urlopen(request, timeout=15) as response:
                    return response.status
            except urllib.error.HTTPError as exc:
                if method == "DELETE" and exc.code == 404:
                    return 404
                raise SystemExit(f"{method} {url}: {exc.code} {exc.read()[:200]!r}") from None
            except urllib.error.URLError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def put_user(self, name, password, tags=""):
        self.call("PUT", "users", name, body={"password": password, "tags": tags})

    def put_permissions(self, vhost, name, rules):
        self.call("PUT", "permissions", vhost, name, body=rules)

    def delete_user(self, name):
        return self.call("DELETE", "users", name)

    def queues(self, vhost):
        request = urllib.request.Request(
            self.url("queues", vhost, query="columns=name,messages,consumers"),
            headers=self.headers)
        with urllib.request.urlopen(request, timeout=15) as response:
            return json.load(response)

    def delete_queue_if(self, vhost, name, *conditions):
        """Delete the queue unless one of `conditions` ("unused", "empty") fails at the
        broker; True when deleted (or gone already)."""
        url = self.url("queues", vhost, name,
                       query="&".join(f"if-{c}=true" for c in conditions))
        request = urllib.request.Request(url, method="DELETE", headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=15):
                return True
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return True
            if exc.code == 400:  # a condition failed: in use, or not empty
                return False
            raise SystemExit(f"DELETE {url}: {exc.code} {exc.read()[:200]!r}") from None


def apply(management, vhost, passwords, user_of=lambda service: service, delete_guest=False):
    """Create or update each service's user (its password set again, so a rotated secret
    takes effect) with exactly its permissions on `vhost`."""
    for service, password in passwords.items():
        user = user_of(service)
        management.put_user(user, password, TAGS.get(service, ""))
        management.put_permissions(vhost, user, permissions(service))
    if delete_guest:
        management.delete_user("guest")


def current_queues(path=HANDLER_QUEUES):
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")}


def prune_queues(management, vhost, current, services=SERVICES):
    """Delete the handler queues (and their retry and dead-letter queues) of `services`
    that are not in `current`; returns {"deleted": [...], "kept": {name: why}}."""
    deleted, kept = [], {}
    for queue in management.queues(vhost):
        name = queue["name"]
        match = HANDLER_QUEUE.fullmatch(name)
        if not match or match["service"] not in services or match["main"] in current:
            continue
        dead_letters = match["suffix"] == ".dlq"
        if management.delete_queue_if(vhost, name, "unused",
                                      *(("empty",) if dead_letters else ())):
            deleted.append(name)
        elif dead_letters:
            kept[name] = ("it holds dead letters (inspect them, then delete it), or a "
                          "consumer reads it")
        else:
            kept[name] = "a consumer still reads it (an older version's instance?)"
    return {"deleted": sorted(deleted), "kept": kept}


def passwords_from(args, services):
    found = {}
    for service in services:
        if args.password_env:
            value = os.environ.get(f"RABBITMQ_{service.upper()}_PASSWORD", "")
        else:
            path = Path(args.password_dir) / f"{service}.password"
            value = path.read_text(encoding="utf-8").strip() if path.exists() else ""
        if not value:
            raise SystemExit(f"no password for the {service} user (RABBITMQ_"
                             f"{service.upper()}_PASSWORD or <dir>/{service}.password)")
        found[service] = value
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api", required=True, help="management API base URL")
    parser.add_argument("--admin-user", default=os.environ.get("RABBITMQ_ADMIN_USER", ""))
    parser.add_argument("--admin-password-file", help="else RABBITMQ_ADMIN_PASSWORD")
    parser.add_argument("--vhost", default=os.environ.get("RABBITMQ_VHOST", "/"))
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--password-dir", help="<service>.password files")
    source.add_argument("--password-env", action="store_true",
                        help="RABBITMQ_<SERVICE>_PASSWORD variables")
    parser.add_argument("--services", nargs="*", default=list(SERVICES))
    parser.add_argument("--delete-guest", action="store_true",
                        help="remove the guest account (every environment but local)")
    parser.add_argument("--prune-queues", action="store_true",
                        help="delete the queues of event handlers the services no longer have")
    args = parser.parse_args(argv)
    admin_password = (Path(args.admin_password_file).read_text(encoding="utf-8").strip()
                      if args.admin_password_file
                      else os.environ.get("RABBITMQ_ADMIN_PASSWORD", ""))
    if not args.admin_user or not admin_password:
        raise SystemExit("the admin user and password are required (RABBITMQ_ADMIN_USER, "
                         "RABBITMQ_ADMIN_PASSWORD)")
    unknown = set(args.services) - set(SERVICES)
    if unknown:
        raise SystemExit(f"unknown services: {sorted(unknown)}")
    management = Management(args.api, args.admin_user, admin_password)
    apply(management, args.vhost, passwords_from(args, args.services),
          delete_guest=args.delete_guest)
    print(f"rabbitmq: users {', '.join(args.services)} with their permissions on "
          f"{args.vhost}")
    if args.prune_queues:
        pruned = prune_queues(management, args.vhost, current_queues(), args.services)
        for name in pruned["deleted"]:
            print(f"rabbitmq: deleted {name} (no handler consumes it now)", file=sys.stderr)
        for name, why in pruned["kept"].items():
            print(f"rabbitmq: kept {name}, no handler's: {why}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
