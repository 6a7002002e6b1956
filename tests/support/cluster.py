"""The three-node RabbitMQ cluster of deploy/local/rabbitmq-cluster.sh (`make cluster`),
driven from tests: start it, give each test a vhost of its own, kill and restart a node,
and ask the nodes what they see (rabbitmqctl; the nodes run no management plugin)."""
import json
import os
import pathlib
import signal
import subprocess
import tempfile
import uuid
from urllib.parse import urlparse

from kit.amqp import broker_reachable
from tests.conftest import ROOT

SCRIPT = ROOT / "deploy" / "local" / "rabbitmq-cluster.sh"
NODES = ("c1", "c2", "c3")


class RabbitCluster:
    def __init__(self, script=SCRIPT):
        self.script = str(script)
        self.base = ROOT / "var" / "cluster"

    def run(self, *args, timeout=240):
        done = subprocess.run([self.script, *args], capture_output=True, text=True,
                              timeout=timeout, check=False)
        if done.returncode:
            raise RuntimeError(f"{' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout

    def ctl(self, node, *args, timeout=60):
        return self.run("ctl", node, "-q", *args, timeout=timeout)

    def ctl_json(self, node, *args):
        return json.loads(self.ctl(node, *args, "--formatter", "json") or "null")

    # -- the cluster -----------------------------------------------------------------------

    def is_up(self):
        """Every node's VM alive and its AMQP port answering (no rabbitmqctl: each call
        boots an Erlang VM, seconds on a busy machine)."""
        return all(self.process_alive(node) for node in NODES) and all(
            broker_reachable(uri, timeout=2) for uri in self.uri().split(";"))

    def restart_dead_nodes(self):
        for node in NODES:
            if not self.process_alive(node):
                self.start_node(node)

    def start(self):
        self.run("start")

    def stop(self):
        self.run("stop")

    def uri(self, vhost=""):
        """AMQP_URI naming every node (kombu's failover form), c1 first."""
        return self.run("uri", vhost).strip()

    def node_name(self, node):
        return f"dealflow-{node}@localhost"

    def running_nodes(self, asked):
        return sorted(self.ctl_json(asked, "cluster_status")["running_nodes"])

    # -- one node --------------------------------------------------------------------------

    def os_pid(self, node):
        return int((self.base / node / "rabbitmq.pid").read_text().strip())

    def process_alive(self, node):
        """The node's VM runs. A VM killed a moment ago stays a zombie until its parent,
        here PID 1 (`-detached`), reaps it, seconds later on some machines: that is dead."""
        try:
            stat = pathlib.Path(f"/proc/{self.os_pid(node)}/stat").read_text()
        except (OSError, ValueError):
            return False
        return stat.rpartition(")")[2].split()[0] not in ("Z", "X")

    def kill(self, node):
        """`kill -9` of the node's Erlang VM: no goodbye to its clients or peers."""
        os.kill(self.os_pid(node), signal.SIGKILL)

    def start_node(self, node):
        self.run("start-node", node)

    def connections(self, vhost):
        """{node: number of client connections in the vhost} over the cluster (a
        connection's node is the one whose AMQP port it reached)."""
        ports = {port: self.node_name(node) for port, node in self.amqp_ports().items()}
        counts = {}
        for conn in self.ctl_json("c2", "list_connections", "vhost", "port") or []:
            if conn["vhost"] == vhost:
                node = ports[int(conn["port"])]
                counts[node] = counts.get(node, 0) + 1
        return counts

    def amqp_ports(self):
        """{AMQP port: node}"""
        return {urlparse(uri).port: node for uri, node in zip(
            self.uri().split(";"), NODES, strict=True)}

    def queues(self, node, vhost):
        """{name: {type, leader, members, online, messages, arguments}} of the vhost's
        queues, as `node` sees them."""
        rows = self.ctl_json(node, "list_queues", "-p", vhost, "name", "type", "leader",
                             "members", "online", "messages", "arguments") or []
        return {row.pop("name"): row for row in rows}

    # -- vhosts ----------------------------------------------------------------------------

    def add_vhost(self, prefix="test"):
        """A new vhost that guest may use, in one rabbitmqctl call."""
        vhost = f"{prefix}_{uuid.uuid4().hex[:8]}"
        definitions = {"vhosts": [{"name": vhost}], "permissions": [{
            "user": "guest", "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}]}
        with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
            json.dump(definitions, file)
            file.flush()
            self.ctl("c2", "import_definitions", file.name)
        return vhost

    def delete_vhost(self, vhost):
        self.ctl("c2", "delete_vhost", vhost)
