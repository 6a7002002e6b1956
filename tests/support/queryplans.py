"""Every query a service sends must use an index: the integration suite records the reads
and writes the services' stores issue (a pymongo command listener; a command counts when
a frame of `services/` is on the stack, so the tests' own look-ups do not) and explains
each distinct query shape once on the configured server.

A plan that reads a whole collection fails the test that caused it, unless the
collection is one of SMALL: collections bounded by configuration, not by the data. On
MongoDB a collection scan is a `COLLSCAN` stage; on the local FerretDB (with
deploy/local/ferretdb/pushdown.patch) it is a SQLite `SCAN <table>` in the plan.
Writes that name one `_id` are answered from the `_id` index on both servers
(id-pushdown.patch locally), so only other write filters are explained, as finds.
"""
import sys
import threading
from pathlib import Path

from pymongo import monitoring

SERVICES = str(Path(__file__).resolve().parents[2] / "services")
# bounded by configuration or by the sales team, never by leads, deals or events
SMALL = frozenset({"reps", "cursors", "pipelines", "snapshots", "agents"})
# Reads that are whole by design, each with its reason.
WHOLE = {
    "metrics/live.py:_load_all": "start-up without a usable snapshot reads every projection",
    "metrics/rebuild.py:kpi_state": "a rebuilt database is read once into its snapshot",
    "metrics/timetravel.py:forecast": "a forecast as of a moment reads every deal projection",
    "metrics/timetravel.py:backtest": "a back-test reads every deal projection",
}
READS = {"find": "filter", "count": "query", "delete": None, "update": None,
         "findAndModify": "query", "aggregate": None, "distinct": "query"}


def _caller():
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        # the function that holds the query, not a comprehension inside it
        if path.startswith(SERVICES) and "/kit/mongo.py" not in path and \
                not frame.f_code.co_name.startswith("<"):
            return f"{Path(path).relative_to(SERVICES)}:{frame.f_code.co_name}"
        frame = frame.f_back
    return None


def shape(value):
    """A filter with its values replaced by their types: one explain per shape."""
    if isinstance(value, dict):
        return tuple(sorted((k, shape(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("list", tuple(sorted({shape(v) for v in value}, key=repr)))
    return type(value).__name__


class QueryRecorder(monitoring.CommandListener):
    def __init__(self):
        self.recording = False
        self.seen = []
        self._lock = threading.Lock()

    def started(self, event):
        if not self.recording or event.command_name not in READS:
            return
        caller = _caller()
        if caller is None or caller in WHOLE:
            return
        for query in _queries(event.command_name, event.command):
            with self._lock:
                self.seen.append((event.database_name, caller, query))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass

    def take(self):
        with self._lock:
            seen, self.seen = self.seen, []
        return seen


def _queries(name, command):
    """(collection, filter, sort) of each query in a command; writes by `_id` are not."""
    coll = command[name]
    if coll in SMALL:
        return []
    if name == "find":
        sort = command.get("sort")
        if sort and command.get("limit"):  # a page: the index walk stops at the limit
            sort = {**sort, "$limit": abs(command["limit"])}
        return [(coll, command.get("filter") or {}, sort)]
    if name == "aggregate":
        first = (command.get("pipeline") or [{}])[0]
        return [(coll, first.get("$match") or {}, None)]
    if name in ("count", "distinct"):
        return [(coll, command.get("query") or {}, None)]
    if name == "findAndModify":
        filters = [command.get("query") or {}]
    else:
        filters = [s.get("q") or {} for s in command.get("updates") or command.get("deletes")
                   or []]
    return [(coll, f, None) for f in filters if not _by_id(f)]


def _by_id(filter_):
    value = filter_.get("_id")
    return value is not None and not isinstance(value, dict)


def scans(db, coll, filter_, sort):
    """The plan's words when it reads the whole collection, else None."""
    command = {"find": coll, "filter": filter_}
    sort = dict(sort or {})
    limit = sort.pop("$limit", None)
    if sort:
        command["sort"] = sort
    if limit:
        command["limit"] = limit
    plan = db.command("explain", command, verbosity="queryPlanner")
    text = repr(plan.get("queryPlanner", plan))
    if "COLLSCAN" in text:
        return "COLLSCAN"
    for line in plan.get("queryPlanner", {}).get("Plan", ()):
        detail = line.split("detail=", 1)[-1]
        if detail.startswith("SCAN ") and "VIRTUAL TABLE" not in detail and not (
                limit and "USING INDEX" in detail and plan.get("limitPushdown")):
            return detail
    return None


RECORDER = QueryRecorder()
monitoring.register(RECORDER)


def describe(value):
    """A filter or sort as it reads in the inventory: values become their type names."""
    if isinstance(value, dict):
        return {k: describe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if all(isinstance(v, dict) for v in value):  # $or / $and branches
            return [describe(v) for v in value]
        return [describe(v) for v in value[:1]]
    if isinstance(value, int | str) and not isinstance(value, bool) and value in (1, -1):
        return value
    return f"<{type(value).__name__}>"


def write_inventory(path, rows):
    lines = ["# Queries the services run, and that each uses an index",
             "",
             "Generated by `make queries` from the integration suite (tests/support/"
             "queryplans.py): every query shape a store sent, explained on the configured "
             "server without a collection scan. Writes by `_id` and collections bounded by "
             f"configuration ({', '.join(sorted(SMALL))}) are left out; whole reads by "
             "design: " + "; ".join(f"`{k}` ({v})" for k, v in WHOLE.items()) + ".",
             "",
             "| caller | collection | filter | sort / limit |",
             "|---|---|---|---|"]
    for caller, coll, filter_, sort in sorted(rows, key=lambda r: (r[0], r[1], repr(r[2]))):
        lines.append(f"| `{caller}` | {coll} | `{filter_}` | `{sort or ''}` |")
    Path(path).write_text("\n".join(lines) + "\n")
