"""The platform as separate `nameko run` processes, the way `make run` starts them, each
with its own database and all on one RabbitMQ vhost of the test's own."""
import os
import subprocess
import uuid

import requests
from pymongo import MongoClient

from tests.conftest import MONGO_URI, ROOT, free_port
from tests.support.tokens import auth_environment
from tests.support.wait import wait_for

SERVICES = ("leads", "deals", "quotes", "support", "metrics", "notify", "webhooks")


class Platform:
    """Services as processes; `databases` names a service's database (else a fresh one),
    `env` adds settings for all of them."""

    def __init__(self, amqp_uri, services=SERVICES, databases=None, **env):
        self.amqp_uri = amqp_uri
        self.services = services
        self.env = env
        self.urls = {}
        self.logs = {}
        self.databases = []
        self._named = dict(databases or {})
        self._procs = {}
        (ROOT / "var" / "log").mkdir(parents=True, exist_ok=True)

    def start(self, timeout=60):
        for name in self.services:
            port = free_port()
            database = self._named.get(name) or f"e2e_{name}_{uuid.uuid4().hex[:8]}"
            self.databases.append(database)
            environ = {
                **os.environ,
                "PYTHONPATH": str(ROOT / "services"),
                "EVENTLET_NO_GREENDNS": "yes",
                "PYTHONWARNINGS": "ignore",
                "AMQP_URI": self.amqp_uri,
                "MONGO_URI": MONGO_URI,
                "MONGO_DATABASE": database,
                "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
                **auth_environment(),
                # customer links (quotes, support, notify): a local key made on first use
                "LINK_KEYS_DEV_DIR": str(ROOT / "var" / "test-links"),
                **{k: str(v) for k, v in self.env.items()},
            }
            self.logs[name] = ROOT / "var" / "log" / f"e2e-{name}.log"
            with open(self.logs[name], "ab") as log:
                self._procs[name] = subprocess.Popen(
                    [str(ROOT / ".venv" / "bin" / "nameko"), "run", "--config",
                     str(ROOT / "services" / name / "config.yml"),
                     f"{name}.service:{name.capitalize()}Service"],
                    env=environ, stdout=log, stderr=subprocess.STDOUT)
            self.urls[name] = f"http://127.0.0.1:{port}"
        for name, url in self.urls.items():
            ready = wait_for(lambda name=name, url=url: self._procs[name].poll() is not None
                             or requests.get(url + "/readyz", timeout=1).status_code == 200,
                             timeout, interval=0.1, ignore=(requests.RequestException,))
            if self._procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited; see {self.logs[name]}")
            if not ready:
                raise RuntimeError(f"{name} not ready; see {self.logs[name]}")
        return self

    def pid(self, name):
        """The process id of a service still running (None once it exited)."""
        proc = self._procs[name]
        return proc.pid if proc.poll() is None else None

    def signal(self, name, signum):
        self._procs[name].send_signal(signum)

    def wait(self, name, timeout):
        """The exit status of one service (None if it did not exit in time)."""
        try:
            return self._procs[name].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        for proc in self._procs.values():
            proc.terminate()
        for proc in self._procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return {name: proc.returncode for name, proc in self._procs.items()}

    def drop_databases(self):
        client = MongoClient(MONGO_URI)
        try:
            for name in self.databases:
                client.drop_database(name)
        finally:
            client.close()
