"""What every benchmark shares: real service processes, HTTP load, raw limits.

Services run as real `nameko run` processes (as `make run` starts them), each on a free
port with a fresh database and a RabbitMQ vhost of the run's own, so a bench never touches
the data of a running platform. Load comes from threads in this process (not eventlet).
"""
import os
import random
import socket
import statistics
import string
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import requests
from pymongo import MongoClient

from kit.devtokens import ensure_keypair, mint

ROOT = Path(__file__).resolve().parents[1]
# security is on in benches too: services read the local key pair's public half (var/auth,
# as `make run`), and the bench's requests carry an admin's token signed with it
KEYS = ROOT / "var" / "auth"


def bearer():
    private, _ = ensure_keypair(KEYS)
    return {"Authorization": f"Bearer {mint(private.read_bytes(), 'ada', ['admin'], 'ops')}"}


def auth_environment():
    _, public = ensure_keypair(KEYS)
    return {"AUTH_MODE": "production", "AUTH_PUBLIC_KEY_FILE": str(public),
            "PEOPLE_FILE": str(ROOT / "deploy" / "local" / "people.yml")}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(q / 100 * (len(values) - 1))))
    return values[k]


class Context:
    def __init__(self):
        base = os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
        self.api_uri = os.environ.get("RABBIT_API_URI", "http://guest:guest@127.0.0.1:15672")
        self.mongo_uri = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017")
        self.vhost = "bench_" + "".join(random.choices(string.ascii_lowercase, k=8))
        parts = urllib.parse.urlsplit(base)
        self.amqp_uri = f"{parts.scheme}://{parts.netloc}/{self.vhost}"
        self._procs = []
        self._dbs = []
        self.databases = {}  # service -> the database its last start uses
        api = urllib.parse.urlsplit(self.api_uri)
        self._api = (f"{api.scheme}://{api.hostname}:{api.port}", (api.username, api.password))
        self._mgmt("PUT", f"/api/vhosts/{self.vhost}")
        self._mgmt("PUT", f"/api/permissions/{self.vhost}/{parts.username or 'guest'}",
                   json={"configure": ".*", "write": ".*", "read": ".*"})

    def _mgmt(self, method, path, **kwargs):
        url, auth = self._api
        resp = requests.request(method, url + path, auth=auth, timeout=10, **kwargs)
        resp.raise_for_status()

    def new_database(self, service):
        name = f"bench_{service}_{random.randrange(16**8):08x}"
        self._dbs.append(name)
        return name

    def start_service(self, name, **env):
        port = free_port()
        environ = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "services"),
            "EVENTLET_NO_GREENDNS": "yes",
            "PYTHONWARNINGS": "ignore",
            "AMQP_URI": self.amqp_uri,
            "MONGO_URI": self.mongo_uri,
            "MONGO_DATABASE": self.databases.setdefault(name, self.new_database(name)),
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
            "LOG_LEVEL": "WARNING",
            **auth_environment(),
            **{k: str(v) for k, v in env.items()},
        }
        cls = f"{name}.service:{name.capitalize()}Service"
        log = open(ROOT / "var" / "log" / f"bench-{name}-{port}.log", "ab")
        proc = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "nameko"), "run", "--config",
             str(ROOT / "services" / name / "config.yml"), cls],
            env=environ, stdout=log, stderr=subprocess.STDOUT)
        self._procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/readyz", timeout=1).status_code == 200:
                    return url
            except requests.RequestException:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited; see var/log/bench-{name}-{port}.log")
            time.sleep(0.1)
        raise RuntimeError(f"{name} not ready")

    def http_load(self, method, url, clients=10, duration=5.0, json_fn=None, headers_fn=None,
                  ok=(200, 201)):
        """Closed-loop load: `clients` threads each send one request after another.

        `url` may be a function (i, thread) -> url; `json_fn(i, thread)` makes the body.
        """
        latencies, errors = [], [0]
        lock = threading.Lock()
        stop_at = time.monotonic() + duration
        counter = [0]

        def worker(t):
            session = requests.Session()
            session.headers.update(bearer())
            mine = []
            while time.monotonic() < stop_at:
                with lock:
                    i = counter[0]
                    counter[0] += 1
                target = url(i, t) if callable(url) else url
                kwargs = {}
                if json_fn:
                    kwargs["json"] = json_fn(i, t)
                if headers_fn:
                    kwargs["headers"] = headers_fn(i, t)
                started = time.perf_counter()
                try:
                    resp = session.request(method, target, timeout=30, **kwargs)
                    good = resp.status_code in ok
                except requests.RequestException:
                    good = False
                elapsed = time.perf_counter() - started
                if good:
                    mine.append(elapsed)
                else:
                    with lock:
                        errors[0] += 1
            with lock:
                latencies.extend(mine)

        started = time.monotonic()
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - started
        return {
            "rps": round(len(latencies) / wall, 1),
            "p50_ms": round(percentile(latencies, 50) * 1000, 2),
            "p99_ms": round(percentile(latencies, 99) * 1000, 2),
            "errors": errors[0],
            "requests": len(latencies),
        }

    def close(self):
        for proc in self._procs:
            proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        client = MongoClient(self.mongo_uri)
        for name in self._dbs:
            client.drop_database(name)
        client.close()
        try:
            self._mgmt("DELETE", f"/api/vhosts/{self.vhost}")
        except requests.RequestException as exc:
            print(f"could not delete vhost {self.vhost}: {exc}", file=sys.stderr)


def median_of(runs):
    return statistics.median(runs)
