"""Notify: notifications rendered and sent per second to the local SMTP server (Mailpit),
as a ratio to a raw SMTP send loop against the same server in the same run.

Both sides open one SMTP connection per mail (as the notifier does) and send the same
shape of mail (a Chinese subject, text and HTML parts). The notify side is the whole path:
lead.assigned events published to the broker, planned into notifications (one insert
each), claimed, rendered (sandboxed Jinja2) and sent, with the outcome and its
notification.sent event written back; the clock runs from the first publish to the
last mail in the inbox. Rendering alone is measured in-process too.
"""
import secrets
import shutil
import smtplib
import subprocess
import tempfile
import time
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import requests
import yaml

from bench.harness import ROOT, free_port

N = 300
RATIOS = {}
SUBJECT = "新线索已分配给您"
TEXT = "王芳，您好：\n线索 L-1 已分配给您（规则：territory），请尽快联系。"
HTML = "<p>王芳，您好：</p><p>线索 <b>L-1</b> 已分配给您（规则：territory），请尽快联系。</p>"


class Inbox:
    def __init__(self, workdir):
        self.smtp_port, self.http_port = free_port(), free_port()
        self.api = f"http://127.0.0.1:{self.http_port}/api/v1"
        binary = ROOT / "var" / "bin" / "mailpit"
        if not binary.exists():
            subprocess.run([str(ROOT / "deploy" / "local" / "mailpit.sh"), "build"], check=True)
        self.proc = subprocess.Popen(
            [str(binary), "--disable-version-check", "--smtp", f"127.0.0.1:{self.smtp_port}",
             "--listen", f"127.0.0.1:{self.http_port}", "--database",
             str(Path(workdir) / "mailpit.db"), "--max", str(4 * N), "--quiet",
             "--smtp-auth-accept-any", "--smtp-auth-allow-insecure"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.api}/info", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("mailpit did not start")

    def total(self):
        return requests.get(f"{self.api}/messages", params={"limit": 1}, timeout=5).json()["total"]

    def clear(self):
        requests.delete(f"{self.api}/messages", timeout=10)

    def wait_for(self, count, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.total() >= count:
                return time.perf_counter()
            time.sleep(0.05)
        raise RuntimeError(f"only {self.total()} of {count} mails arrived")

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def raw_smtp(inbox, n):
    started = time.perf_counter()
    for i in range(n):
        msg = EmailMessage(policy=SMTP)
        msg["Subject"], msg["From"] = SUBJECT, "Dealflow <noreply@dealflow.example.com>"
        msg["To"] = f"王芳 <rep{i}@example.cn>"
        msg.set_content(TEXT)
        msg.add_alternative(HTML, subtype="html")
        with smtplib.SMTP("127.0.0.1", inbox.smtp_port, timeout=10) as smtp:
            smtp.send_message(msg)
    inbox.wait_for(n)
    return n / (time.perf_counter() - started)


def render_only(n):
    from notify.templates import Templates
    doc = yaml.safe_load((ROOT / "services" / "notify" / "templates.yml").read_text())
    templates = Templates(doc, "zh-CN")
    context = {"event": {"type": "lead.assigned"}, "recipient": {"name": "王芳"},
               "data": {"lead_id": "L-1", "rule": "territory"}, "links": {},
               "unsubscribe_url": "http://127.0.0.1:8006/api/v1/unsubscribe/x"}
    started = time.perf_counter()
    for _ in range(n):
        templates.render("lead_assigned", "zh-CN", context)
    return n / (time.perf_counter() - started)


def publish_assigned(amqp_uri, n):
    from kit.amqp import ConfirmingPublisher
    from kit.events import new_event
    events = [new_event("lead.assigned", f"L-{i}", {
        "lead_id": f"L-{i}", "owner_id": "rep-1", "team": "gc", "rule": "territory",
        "status": "new"}, 1) for i in range(n)]
    publisher = ConfirmingPublisher(amqp_uri)
    try:
        for start in range(0, n, 100):
            publisher.publish_batch([("leads.events", e["type"], e, {"ce-id": e["id"]})
                                     for e in events[start:start + 100]])
    finally:
        publisher.close()


def run(ctx):
    from kit.devtokens import ensure_keypair

    workdir = tempfile.mkdtemp(prefix="bench-notify-")
    inbox = Inbox(workdir)
    try:
        raw = raw_smtp(inbox, N)
        inbox.clear()
        people = Path(workdir) / "people.yml"
        people.write_text(yaml.safe_dump({"people": {"rep-1": {
            "name": "王芳", "email": "rep1@example.cn", "locale": "zh-CN",
            "time_zone": "Asia/Shanghai"}}}, allow_unicode=True), encoding="utf-8")
        _, public = ensure_keypair(ROOT / "var" / "bench-auth")
        ctx.start_service("notify", SMTP_HOST="127.0.0.1", SMTP_PORT=inbox.smtp_port,
                          PEOPLE_FILE=str(people), NOTIFY_RATE_COUNT=0,
                          AUTH_PUBLIC_KEY_FILE=str(public),
                          LINKS_KEYS=f"bench={secrets.token_urlsafe(40)}")
        started = time.perf_counter()
        publish_assigned(ctx.amqp_uri, N)
        sent = N / (inbox.wait_for(N) - started)
        return {"notifications_sent_per_s": round(sent, 1),
                "raw_smtp_sends_per_s": round(raw, 1),
                "sent_vs_raw_smtp": round(sent / raw, 3),
                "templates_rendered_per_s": round(render_only(2000), 1)}
    finally:
        inbox.close()
        shutil.rmtree(workdir, ignore_errors=True)
