"""Put dead-lettered events back to work once their cause is fixed.

    python -m kit.deadletters list   [--amqp-uri URI]
    python -m kit.deadletters replay QUEUE [--amqp-uri URI] [--limit N]

`replay` moves messages from `<QUEUE>.dlq` back to `<QUEUE>` one at a time: each is
republished with confirms and only then acked, so a crash repeats a message (consumers are
idempotent) and never loses one. It goes back byte for byte, marked `x-dealflow-replayed`:
if it fails again the consumer dead-letters it at once (with the new reason) instead of
sending it round the retries, so a replay never loops.
"""
import argparse
import os
import sys

import requests
from kombu import Queue

from kit.amqp import ConfirmingPublisher, connect
from kit.consumer import REPLAYED, as_delivered

DLQ = ".dlq"


def replay(amqp_uri, queue, limit=None):
    """Move up to `limit` of the messages now in `queue + '.dlq'` to `queue`; returns how
    many."""
    moved = 0
    publisher = ConfirmingPublisher(amqp_uri)
    try:
        with connect(amqp_uri, 3.0) as conn:
            dead = Queue(queue + DLQ, no_declare=True)(conn.channel())
            # only what is there now: a message that fails again comes straight back, and
            # would be taken again and again
            _, waiting, _ = dead.queue_declare(passive=True)
            limit = waiting if limit is None else min(limit, waiting)
            while moved < limit:
                message = dead.get(no_ack=False)
                if message is None:
                    break
                headers = {k: v for k, v in (message.headers or {}).items()
                           if not k.startswith(("x-death", "x-dealflow-"))}
                headers[REPLAYED] = True
                publisher.publish_batch([("", queue, as_delivered(message), headers)])
                message.ack()
                moved += 1
    finally:
        publisher.close()
    return moved


def dead_letter_queues(api_uri):
    """Names and depths of every `*.dlq` queue, from the management API."""
    resp = requests.get(f"{api_uri.rstrip('/')}/api/queues", timeout=10)
    resp.raise_for_status()
    return sorted((q["vhost"], q["name"], q.get("messages", 0))
                  for q in resp.json() if q["name"].endswith(DLQ))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m kit.deadletters")
    parser.add_argument("--amqp-uri", default=os.environ.get(
        "AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/"))
    parser.add_argument("--api-uri", default=os.environ.get(
        "RABBIT_API_URI", "http://guest:guest@127.0.0.1:15672"))
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="dead-letter queues and their depth")
    again = sub.add_parser("replay", help="move a queue's dead letters back to it")
    again.add_argument("queue", help="the consumer's queue (without .dlq)")
    again.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    if args.command == "list":
        for vhost, name, depth in dead_letter_queues(args.api_uri):
            print(f"{depth:8d}  {vhost}  {name}")
    else:
        moved = replay(args.amqp_uri, args.queue.removesuffix(DLQ), args.limit)
        print(f"replayed {moved} message(s) to {args.queue}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
