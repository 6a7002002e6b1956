"""The platform as separate `nameko run` processes, the way `make run` starts them, each
with its own database and all on one RabbitMQ vhost of the test's own."""
import os
import subprocess
import uuid

import requests
from pymongo import MongoClient

from tests.conftest import MONGO_URI, ROOT, free_port
from tests.support.tokens import PRIVATE, auth_environment
from tests.support.wait import wait_for

SERVICES = ("leads", "deals", "quotes", "support", "metrics", "notify", "webhooks")


class Platform:
    """Services as processes; `databases` names a service's database (else a fresh one),
    `env` adds settings for all of them, `settings` YAML appended to a service's config.yml
    (a top-level key given again replaces the file's: nested settings no variable reaches),
    `service_env` settings of one service (its broker or database address), `replicas`
    processes of each service (sharing its database and queues; `urls` names the first,
    `instances` all of them as "<service>" and "<service>#<n>")."""

    def __init__(self, amqp_uri, services=SERVICES, databases=None, settings=None,
                 service_env=None, replicas=1, **env):
        self.amqp_uri = amqp_uri
        self.replicas = replicas
        self.instances = {}
        self.services = services
        self.env = env
        self.settings = dict(settings or {})
        self.service_env = {name: dict(v) for name, v in (service_env or {}).items()}
        self._environ = {}
        self._argv = {}
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
            self._environ[name] = {
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
                "WEBHOOK_SEAL_KEYS_DEV_DIR": str(ROOT / "var" / "test-webhook-seal"),
                # notify asks quotes and support for customers and links, with a token it
                # signs with the tests' identity provider key (as deploy/local does)
                **{f"{owner.upper()}_URL": self.urls[owner] for owner in ("quotes", "support")
                   if owner in self.urls},
                "NOTIFY_LOOKUP_SIGNING_KEY_FILE": str(PRIVATE),
                **{k: str(v) for k, v in self.env.items()},
                **{k: str(v) for k, v in self.service_env.get(name, {}).items()},
            }
            config = ROOT / "services" / name / "config.yml"
            if name in self.settings:
                config = ROOT / "var" / "e2e-config" / f"{name}-{database}.yml"
                config.parent.mkdir(parents=True, exist_ok=True)
                config.write_text((ROOT / "services" / name / "config.yml").read_text()
                                  + "\n" + self.settings[name], encoding="utf-8")
            self._argv[name] = [str(ROOT / ".venv" / "bin" / "nameko"), "run", "--config",
                                str(config), f"{name}.service:{name.capitalize()}Service"]
            self.logs[name] = ROOT / "var" / "log" / f"e2e-{name}.log"
            self._spawn(name)
            self.urls[name] = self.instances[name] = f"http://127.0.0.1:{port}"
            for n in range(1, self.replicas):
                other, port = f"{name}#{n}", free_port()
                self._environ[other] = {**self._environ[name],
                                        "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"}
                self._argv[other], self.logs[other] = self._argv[name], self.logs[name]
                self._spawn(other)
                self.instances[other] = f"http://127.0.0.1:{port}"
        try:
            for name in self.instances:
                self.ready(name, timeout)
        except BaseException:
            self.kill()  # no process outlives a failed start
            raise
        return self

    def kill(self):
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def _spawn(self, name):
        with open(self.logs[name], "ab") as log:
            self._procs[name] = subprocess.Popen(self._argv[name], env=self._environ[name],
                                                 stdout=log, stderr=subprocess.STDOUT)

    def ready(self, name, timeout=60):
        url = self.instances[name]
        ready = wait_for(lambda: self._procs[name].poll() is not None
                         or requests.get(url + "/readyz", timeout=1).status_code == 200,
                         timeout, interval=0.1, ignore=(requests.RequestException,))
        if self._procs[name].poll() is not None:
            raise RuntimeError(f"{name} exited; see {self.logs[name]}")
        if not ready:
            raise RuntimeError(f"{name} not ready; see {self.logs[name]}")

    def pid(self, name):
        """The process id of a service still running (None once it exited)."""
        proc = self._procs[name]
        return proc.pid if proc.poll() is None else None

    def crash(self, name):
        """kill -9, then the same process again on the same port and database."""
        self._procs[name].kill()
        self._procs[name].wait()
        self._spawn(name)
        self.ready(name)

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
