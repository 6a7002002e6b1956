"""The producers' replayable logs on /metrics: each stream's length and the age of its
oldest and newest message.

A stream's length comes from the management API (a passive queue declare reports 0
messages for a stream); the ages from the `time` of its first and last message, read as
any subscriber reads them (metrics.replay). An event's `time` is at most its append time,
so the newest age is an upper bound by the relay's delay. Both are looked up every
`STREAM_STATS.refresh_seconds` in a thread of their own, never by a scrape; a scrape
renders the last figures, with the ages counted to the moment of the scrape.
"""
import base64
import json
import logging
import urllib.error
import urllib.parse
import urllib.request

import eventlet
from kombu import Connection
from nameko.extensions import DependencyProvider
from prometheus_client.core import GaugeMetricFamily

from kit.config import setting
from kit.fields import utcnow
from kit.prom import PromRegistry
from metrics.live import LiveKpis
from metrics.rebuild import APPLIED
from metrics.replay import StreamReader, streams_of

log = logging.getLogger(__name__)

PREFIX = "dealflow_stream_"


class ManagementApi:
    """GET /api/queues/<vhost>/<name> with the service's broker user (tag `management`,
    deploy/rabbitmq/access.py), unless the API URI names other credentials."""

    def __init__(self, api_uri, amqp_uri, timeout=5.0):
        api = urllib.parse.urlsplit(api_uri)
        broker = Connection(amqp_uri)
        self.base = f"{api.scheme}://{api.hostname}:{api.port or 15672}"
        user = urllib.parse.unquote(api.username) if api.username else broker.userid
        password = urllib.parse.unquote(api.password) if api.password else broker.password
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}"}
        self.vhost = broker.virtual_host or "/"
        self.timeout = timeout

    def queue(self, queue):
        """(messages, retention seconds by age or None) of a queue, or None when it does
        not exist."""
        url = "/".join((self.base, "api", "queues", urllib.parse.quote(self.vhost, safe=""),
                        urllib.parse.quote(queue, safe="")))
        request = urllib.request.Request(
            url + "?columns=messages,arguments,effective_policy_definition",
            headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                info = json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        max_age = ((info.get("arguments") or {}).get("x-max-age")
                   or (info.get("effective_policy_definition") or {}).get("max-age"))
        return int(info.get("messages") or 0), age_seconds(max_age)


# RabbitMQ's max-age units (a month and a year as 30 and 365 days)
UNITS = {"Y": 365 * 86400, "M": 30 * 86400, "D": 86400, "h": 3600, "m": 60, "s": 1}


def age_seconds(text):
    """`90D` -> 7776000; None for no limit or a value that is not one."""
    text = str(text or "")
    if len(text) < 2 or text[-1] not in UNITS or not text[:-1].isdigit():
        return None
    return int(text[:-1]) * UNITS[text[-1]]


class StreamStats(DependencyProvider):
    prom = PromRegistry()

    def setup(self):
        config = self.container.config
        self.refresh_seconds = float(setting(config, "STREAM_STATS.refresh_seconds", 30))
        self.api = ManagementApi(setting(config, "STREAM_STATS.api_uri",
                                         "http://127.0.0.1:15672"), config["AMQP_URI"])
        self.reader = StreamReader(config["AMQP_URI"], prefetch=10, idle_seconds=0.5)
        self.streams = streams_of(APPLIED)
        self.figures = {}  # stream -> _look_up()
        self.rounds = 0  # completed look-ups: how tests see the loop turn
        self._running = False

    def start(self):
        self.prom.registry.register(StreamCollector(self))
        self._running = True
        self.container.spawn_managed_thread(self._keep_current, identifier="stream.stats")

    def stop(self):
        self._running = False

    def kill(self):
        self._running = False

    def _keep_current(self):
        # not before the start is done: the look-ups read the streams' edges, CPU in the
        # one thread that is restoring the KPIs and answering /readyz meanwhile
        live = next((d for d in self.container.dependencies if isinstance(d, LiveKpis)), None)
        if live is not None:
            live.wait_restored()
        while self._running:
            try:
                self.figures = {stream: self._look_up(stream) for stream in self.streams}
                self.rounds += 1
            except Exception as exc:  # noqa: BLE001 - a managed thread must not die
                log.warning("stream figures unavailable, retrying: %s", exc)
            eventlet.sleep(self.refresh_seconds)

    def _look_up(self, stream):
        """(messages or None when absent, retention seconds, first time, last time)."""
        found = self.api.queue(stream)
        if found is None:
            return None, None, None, None
        # (the API's count of a new queue lags by its stats interval: the ages do not wait)
        messages, retention = found
        first, last = self.reader.edge(stream, "first"), self.reader.edge(stream, "last")
        return messages, retention, first and first[1], last and last[1]


class StreamCollector:
    def __init__(self, stats):
        self.stats = stats

    def describe(self):
        return []

    def collect(self):
        now = utcnow()
        exists = GaugeMetricFamily(PREFIX + "exists", "1 when the producer's stream exists "
                                   "(it is declared before its first event)", labels=["stream"])
        length = GaugeMetricFamily(PREFIX + "messages", "Messages kept in the producer's "
                                   "stream (management API)", labels=["stream"])
        oldest = GaugeMetricFamily(PREFIX + "oldest_age_seconds", "Age of the oldest event "
                                   "kept in the stream (by its time): the history it covers",
                                   labels=["stream"])
        newest = GaugeMetricFamily(PREFIX + "newest_age_seconds", "Age of the newest event "
                                   "in the stream (by its time)", labels=["stream"])
        retention = GaugeMetricFamily(PREFIX + "max_age_seconds", "The stream's retention by "
                                      "age (its x-max-age, or a policy's max-age)",
                                      labels=["stream"])
        for stream, (messages, max_age, first, last) in sorted(self.stats.figures.items()):
            exists.add_metric([stream], 0 if messages is None else 1)
            length.add_metric([stream], messages or 0)
            if max_age is not None:
                retention.add_metric([stream], max_age)
            if first is not None:
                oldest.add_metric([stream], (now - first).total_seconds())
            if last is not None:
                newest.add_metric([stream], (now - last).total_seconds())
        yield from (exists, length, retention, oldest, newest)
