"""What every benchmark shares: real service processes, HTTP load, raw limits.

Services run as real `nameko run` processes (as `make run` starts them), each on a free
port with a fresh database and a RabbitMQ vhost of the run's own, so a bench never touches
the data of a running platform. Load comes from threads in this process (not eventlet).
"""
import contextlib
import os
import random
import re
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


_KEYS_LOCK = threading.Lock()


def bearer():
    # one thread at a time: ensure_keypair writes the pair on first use, and load threads
    # racing there once left a private key that did not match the public one (every
    # request then got 401)
    with _KEYS_LOCK:
        private, _ = ensure_keypair(KEYS)
    return {"Authorization": f"Bearer {mint(private.read_bytes(), 'ada', ['admin'], 'ops')}"}


def auth_environment():
    with _KEYS_LOCK:
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
        self.vhosts = [self.vhost]  # deleted at close
        parts = urllib.parse.urlsplit(base)
        self.amqp_uri = f"{parts.scheme}://{parts.netloc}/{self.vhost}"
        self._procs = []
        self._dbs = []
        self.started = []  # {name, pid, url, start_s} of every process started
        self.profiles = {}  # profile name -> its collapsed stacks (BENCH_PROFILE=1)
        self.database_pid = database_pid(self.mongo_uri)
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
        environ = {
            "MONGO_URI": self.mongo_uri,
            "MONGO_DATABASE": self.databases.setdefault(name, self.new_database(name)),
            **auth_environment(),
            # services that sign customer links refuse to start without a key
            "LINK_KEYS": "bench=" + "b" * 40,
            "WEBHOOK_SEAL_KEYS": "bench=" + "s" * 40,  # and webhooks without a sealing key
            **env,
        }
        return self.start_process(
            name, f"{name}.service:{name.capitalize()}Service",
            ROOT / "services" / name / "config.yml", "/readyz", environ)

    def start_process(self, name, cls, config, ready_path, env):
        """`nameko run` of `cls`; returns its URL once `ready_path` answers 200.

        The seconds from spawning the process to that first 200 are kept in `self.started`
        (with the pid, for the resident memory read at the end)."""
        port = free_port()
        environ = {
            **os.environ,
            "PYTHONPATH": f"{ROOT / 'services'}:{ROOT}",
            "EVENTLET_NO_GREENDNS": "yes",
            "PYTHONWARNINGS": "ignore",
            "AMQP_URI": self.amqp_uri,
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
            "LOG_LEVEL": "WARNING",
            **{k: str(v) for k, v in env.items()},
        }
        log = open(ROOT / "var" / "log" / f"bench-{name}-{port}.log", "ab")
        spawned = time.perf_counter()
        proc = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "nameko"), "run", "--config", str(config), cls],
            env=environ, stdout=log, stderr=subprocess.STDOUT)
        self._procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(url + ready_path, timeout=1).status_code == 200:
                    self.started.append({"name": name, "pid": proc.pid, "url": url,
                                         "start_s": time.perf_counter() - spawned})
                    return url
            except requests.RequestException:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited; see var/log/bench-{name}-{port}.log")
            time.sleep(0.02)
        raise RuntimeError(f"{name} not ready")

    @contextlib.contextmanager
    def profiling(self, name, url, seconds):
        """With BENCH_PROFILE=1, py-spy samples the process behind `url` while the block
        runs (`seconds` long at most): collapsed stacks in var/profile/<name>.txt, and
        their top frames in the report. Without it (or with no name), nothing."""
        if not name or os.environ.get("BENCH_PROFILE") != "1":
            yield
            return
        folder = ROOT / "var" / "profile"
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / f"{name}.txt"
        out.unlink(missing_ok=True)  # a failed sampling must not leave an old profile
        spy = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "py-spy"), "record", "--pid", str(self.pid_of(url)),
             "--duration", str(max(1, int(seconds))), "--rate", "200", "--format", "raw",
             "--output", str(out), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield
        finally:
            try:
                spy.wait(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                spy.kill()
            if out.exists():
                self.profiles[name] = str(out.relative_to(ROOT))

    def stop(self, url):
        """Stops the process behind `url` (SIGTERM, then SIGKILL after 15 s)."""
        pid = self.pid_of(url)
        proc = next(p for p in self._procs if p.pid == pid)
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def pid_of(self, url):
        return next(s["pid"] for s in self.started if s["url"] == url)

    def resident_mb(self):
        """Resident memory of every process this run started and that still runs."""
        out = {}
        for s in self.started:
            mb = resident_mb(s["pid"])
            if mb is not None:
                out[f"{s['name']}@{s['url'].rsplit(':', 1)[1]}"] = mb
        return out

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
        for vhost in self.vhosts:
            try:
                self._mgmt("DELETE", f"/api/vhosts/{vhost}")
            except requests.RequestException as exc:
                print(f"could not delete vhost {vhost}: {exc}", file=sys.stderr)


WRITE_COMMANDS = ("insert", "update", "delete", "findAndModify")
READ_COMMANDS = ("find", "getMore", "aggregate", "count", "distinct")


def command_rates(before, after, seconds):
    """Database commands per second between two readings of serverStatus's counters."""
    def delta(names):
        return sum(after.get(n, 0) - before.get(n, 0) for n in names)
    writes, reads = delta(WRITE_COMMANDS), delta(READ_COMMANDS)
    return {"ops": round((writes + reads) / seconds), "writes": round(writes / seconds),
            "reads": round(reads / seconds)}


class DbOps:
    """The database's own command counters (serverStatus metrics.commands; FerretDB and
    MongoDB both keep them) from now until `per_second`."""

    def __init__(self, uri):
        self.client = MongoClient(uri)
        self.before = self._read()

    def _read(self):
        commands = self.client.admin.command("serverStatus")["metrics"]["commands"]
        return {name: value.get("total", 0) for name, value in commands.items()
                if isinstance(value, dict)}

    def per_second(self, seconds):
        try:
            return command_rates(self.before, self._read(), seconds)
        finally:
            self.client.close()


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User plus system CPU seconds a process has used (None once it is gone)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


class CpuUse:
    """Share of one core that each of `pids` used from now until `percent` (None for a
    pid that is None or gone), and the machine's load average then (what else competed
    for the two cores)."""

    def __init__(self, pids):
        self.pids = list(pids)
        self.before = [cpu_seconds(pid) for pid in self.pids]
        self.started = time.monotonic()

    def percent(self):
        seconds = time.monotonic() - self.started
        used = [None if a is None or b is None else round(100 * (b - a) / seconds)
                for a, b in zip(self.before, [cpu_seconds(pid) for pid in self.pids],
                                strict=True)]
        return used, round(os.getloadavg()[0], 1)


def database_pid(uri):
    """The pid of the local process listening on the database's port (FerretDB here), or
    None (a remote server, or `ss` cannot tell)."""
    port = urllib.parse.urlsplit(uri).port or 27017
    try:
        listing = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True,
                                 text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"pid=(\d+)", listing)
    return int(found[1]) if found else None


def resident_mb(pid):
    """VmRSS of a process in MB (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except FileNotFoundError:
        return None
    return None


def median_of(runs):
    return statistics.median(runs)
