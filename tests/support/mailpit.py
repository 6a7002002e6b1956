"""A private Mailpit (the local SMTP server with an inbox) for one test session, on ports
of its own: tests read what was sent through its REST API, and may stop and start it
again on the same ports to make an SMTP outage.

The binary is the one `deploy/local/mailpit.sh build` puts in var/bin (MAILPIT_BIN
elsewhere); `--smtp-allowed-recipients` makes addresses outside the allowed ones a
permanent SMTP failure (550), as a real server refuses an unknown mailbox.
"""
import os
import subprocess

import requests

from tests.conftest import ROOT, free_port
from tests.support.wait import wait_for

BIN = os.environ.get("MAILPIT_BIN", str(ROOT / "var" / "bin" / "mailpit"))
# the domain our tests send to; anything else is refused with 550
ALLOWED = r"@example\.(com|cn)$"


class Mailpit:
    def __init__(self, workdir, allowed=ALLOWED):
        self.smtp_port = free_port()
        self.http_port = free_port()
        self.workdir = workdir
        self.allowed = allowed
        self.api = f"http://127.0.0.1:{self.http_port}/api/v1"
        self.proc = None

    def start(self):
        if not os.path.exists(BIN):
            subprocess.run([str(ROOT / "deploy" / "local" / "mailpit.sh"), "build"], check=True)
        log = open(os.path.join(self.workdir, "mailpit.log"), "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [BIN, "--disable-version-check", "--smtp", f"127.0.0.1:{self.smtp_port}",
             "--listen", f"127.0.0.1:{self.http_port}",
             "--database", os.path.join(self.workdir, "mailpit.db"),
             "--smtp-auth-accept-any", "--smtp-auth-allow-insecure",
             "--smtp-allowed-recipients", self.allowed, "--quiet",
             # Mailpit keeps 500 messages by default and drops the oldest: a soak sends more
             "--max", "0"],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        up = wait_for(lambda: requests.get(f"{self.api}/info", timeout=1).ok, timeout=20,
                      ignore=(requests.RequestException,))
        assert up, "mailpit did not start"
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def clear(self):
        requests.delete(f"{self.api}/messages", timeout=5).raise_for_status()

    def messages(self):
        resp = requests.get(f"{self.api}/messages", params={"limit": 500}, timeout=5)
        resp.raise_for_status()
        return resp.json()["messages"]

    def message(self, message_id):
        resp = requests.get(f"{self.api}/message/{message_id}", timeout=5)
        resp.raise_for_status()
        return resp.json()

    def to(self, address):
        """Summaries of the messages addressed to `address`."""
        return [m for m in self.messages()
                if any(r["Address"] == address for r in m.get("To") or [])]
