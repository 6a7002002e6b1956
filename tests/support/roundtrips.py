"""Counting the database commands a service sends (a pymongo command listener): how many
round trips a write costs, and how large they are, as behaviour rather than timing.

A command counts when a frame of `services/` is on the stack (the tests' own look-ups do
not), it goes to the database being watched, and it is not the service's start-up or its
relay's periodic sweep (work an idle service does too, not the cost of a write)."""
import sys
import threading
from pathlib import Path

import bson
from pymongo import monitoring

SERVICES = str(Path(__file__).resolve().parents[2] / "services")
PERIODIC = frozenset({"kit/mongo.py:_prepare", "kit/outbox.py:sweep",
                      "kit/outbox.py:oldest_pending",
                      "kit/migrations.py:_run"})  # (start-up's data migrations)


def _from_services():
    """Whether a service sent the command, outside its start-up and periodic sweeps."""
    frame, found = sys._getframe(2), False
    while frame is not None:
        path = frame.f_code.co_filename
        if path.startswith(SERVICES):
            found = True
            if f"{Path(path).relative_to(SERVICES)}:{frame.f_code.co_name}" in PERIODIC:
                return False
        frame = frame.f_back
    return found


class Commands(monitoring.CommandListener):
    def __init__(self):
        self.database = None
        self.sent = []
        self.replies = []  # (command, collection, bytes of the reply) of those sent
        self._waiting = {}  # request id -> (command, collection)
        self._lock = threading.Lock()

    def started(self, event):
        if event.database_name != self.database or not _from_services():
            return
        name = event.command_name
        with self._lock:
            self.sent.append((name, event.command.get(name),
                              len(bson.encode(event.command))))
            self._waiting[event.request_id] = (name, event.command.get(name))

    def succeeded(self, event):
        with self._lock:
            what = self._waiting.pop(event.request_id, None)
            if what is not None and event.database_name == self.database:
                self.replies.append((*what, len(bson.encode(event.reply))))

    def failed(self, event):
        with self._lock:
            self._waiting.pop(event.request_id, None)

    def answered(self):
        """Whether every command recorded so far has had its reply (or failed): the
        database may show a write's effect before the service has read the reply."""
        with self._lock:
            return not self._waiting

    def watch(self, database):
        """Start recording the commands sent to `database` (what was recorded is dropped)."""
        with self._lock:
            self.database, self.sent, self.replies, self._waiting = database, [], [], {}

    def take(self, replies=False):
        """[(command, collection, bytes)] since `watch`, and stop recording; with
        `replies`, also [(command, collection, bytes of the reply)]."""
        with self._lock:
            sent, self.sent, self.database = self.sent, [], None
            received, self.replies = self.replies, []
        return (sent, received) if replies else sent


COMMANDS = Commands()
monitoring.register(COMMANDS)
