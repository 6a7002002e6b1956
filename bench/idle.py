"""Idle cost: CPU of the database and the services while nobody uses the platform.

Leads are imported over HTTP (the CSV import, in chunks of 10,000), the services are left
to finish what that caused (relays, metrics), and then the CPU time that the database and
every service process use over a quiet window is read from /proc, as a percentage of one
core. Periodic work (outbox sweeps, timers, stall checks, recounts, the metrics refresh)
runs at its configured intervals throughout; target: <= 5 % at 100,000 leads.

`python -m bench idle` measures at IDLE_LEADS (default 1,000) leads; the database's pid is
read from var/ferretdb/ferretdb.pid, or FERRETDB_PID.
"""
import os
import random
import time

import requests

from bench.harness import ROOT, bearer

WINDOW_SECONDS = float(os.environ.get("IDLE_WINDOW_SECONDS", 60))
CHUNK = 10_000
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _database_pid():
    pid = os.environ.get("FERRETDB_PID")
    if pid:
        return int(pid)
    path = ROOT / "var" / "ferretdb" / "ferretdb.pid"
    return int(path.read_text()) if path.exists() else None


def _csv(start, count, rng):
    rows = ["name,company,email,phone,country,source"]
    for n in range(start, start + count):
        rows.append(f"Lead {n},Company {n % 5000},lead{n}@example.com,,"
                    f"{rng.choice(['DE', 'US', 'CN', 'FR'])},{rng.choice(['import', 'event'])}")
    return ("\n".join(rows) + "\n").encode()


def _wait_until_drained(ctx, timeout):
    """Until no queue of the run's vhost holds a message (twice in a row, 5 s apart)."""
    url, auth = ctx._api
    vhost = requests.utils.quote(ctx.vhost, safe="")
    deadline, quiet = time.monotonic() + timeout, 0
    while time.monotonic() < deadline and quiet < 2:
        queues = requests.get(f"{url}/api/queues/{vhost}", auth=auth, timeout=10).json()
        busy = sum(q.get("messages", 0) or 0 for q in queues)
        quiet = quiet + 1 if busy == 0 else 0
        time.sleep(5)


def _wait_until_applied(metrics_url, events, timeout):
    """Until the metrics service has applied `events` distinct events."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = requests.get(metrics_url + "/metrics", timeout=10).text
        applied = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                      if line.startswith("dealflow_events_applied_total{"))
        if applied >= events:
            return
        time.sleep(2)
    raise RuntimeError(f"metrics applied fewer than {events} events in {timeout} s")


def _wait_until_relayed(url, timeout):
    """Until no event waits in the service's outboxes (its outbox age gauge reads 0)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = requests.get(url + "/metrics", timeout=10).text
        ages = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line.startswith("dealflow_outbox_oldest_seconds{")]
        if ages and max(ages) == 0:
            return
        time.sleep(2)
    raise RuntimeError(f"outboxes of {url} not empty after {timeout} s")


def run(ctx, leads=None):
    leads = int(leads or os.environ.get("IDLE_LEADS", 1000))
    urls = {name: ctx.start_service(name) for name in ("leads", "deals", "metrics")}
    rng = random.Random(18)
    started = time.monotonic()
    for start in range(0, leads, CHUNK):
        resp = requests.post(urls["leads"] + "/api/v1/leads/import",
                             data=_csv(start, min(CHUNK, leads - start), rng),
                             headers={"Content-Type": "text/csv", **bearer(),
                                      "Idempotency-Key": f"idle-{leads}-{start}"},
                             timeout=600)
        resp.raise_for_status()
    imported = time.monotonic() - started
    # let relays and the metrics service finish what the import caused
    _wait_until_applied(urls["metrics"], 2 * leads,  # lead.created and lead.assigned
                        timeout=float(os.environ.get("IDLE_SETTLE_SECONDS", 1800)))
    _wait_until_drained(ctx, timeout=60)
    _wait_until_relayed(urls["leads"], timeout=600)
    settled = time.monotonic() - started - imported
    pids = dict(zip(urls, (p.pid for p in ctx._procs[-len(urls):]), strict=True))
    database = _database_pid()
    if database:
        pids["database"] = database
    before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    time.sleep(WINDOW_SECONDS)
    each = {name: round(100 * (_cpu_seconds(pid) - before[name]) / WINDOW_SECONDS, 2)
            for name, pid in pids.items()}
    used = sum(each.values()) * WINDOW_SECONDS / 100
    return {"leads": leads, "import_seconds": round(imported, 1),
            "events_drained_seconds": round(settled, 1),
            "idle_cpu_percent_of_one_core": round(100 * used / WINDOW_SECONDS, 2),
            "idle_cpu_percent_by_process": each, "database_measured": bool(database)}
