"""The people directory: one YAML file (a ConfigMap in Kubernetes) keyed by the tokens'
`sub`, read by every service that needs to know who someone is: owners must be known
people, a manager's team is its members, quotes ask for approval levels, support for
skills and capacity, notify for e-mail, locale and time zone.

    people:
      alice: {name: Alice Li, email: alice@example.com, team: east, manager: mia,
              locale: en-US, time_zone: Europe/Berlin, approval_level: 1,
              skills: [billing], capacity: 20}

The file is read again when it changes (checked at most every `PEOPLE.reload_seconds`).
"""
import os
import threading
import time

import yaml
from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields

from kit.config import setting
from kit.errors import Invalid

# libyaml's safe loader where PyYAML has it: the same documents, a fifth of the time
# (every service reads the directory when it starts)
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class PersonSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True)
    email = fields.Email(load_default=None, allow_none=True)
    phone = fields.String(load_default=None, allow_none=True)
    locale = fields.String(load_default=None, allow_none=True)
    time_zone = fields.String(load_default=None, allow_none=True)
    team = fields.String(load_default=None, allow_none=True)
    manager = fields.String(load_default=None, allow_none=True)
    approval_level = fields.Integer(load_default=0)
    skills = fields.List(fields.String(), load_default=list)
    capacity = fields.Integer(load_default=None, allow_none=True)
    active = fields.Boolean(load_default=True)
    # notify: no notifications in these local hours ({start: "22:00", end: "08:00"}), and
    # the roles its `role:<role>` recipients reach (tokens alone grant roles for access)
    quiet_hours = fields.Dict(keys=fields.String(), values=fields.String(),
                              load_default=None, allow_none=True)
    roles = fields.List(fields.String(), load_default=list)


class DirectorySchema(Schema):
    class Meta:
        unknown = INCLUDE

    people = fields.Dict(keys=fields.String(), values=fields.Nested(PersonSchema),
                         required=True)


class DirectoryError(Exception):
    """The directory file is missing or malformed: the service must not start."""


class Directory:
    def __init__(self, people):
        self.people = dict(people)
        self._teams = {}
        for sub, person in self.people.items():
            if person.get("team"):
                self._teams.setdefault(person["team"], []).append(sub)

    @classmethod
    def load(cls, path):
        try:
            with open(path, encoding="utf-8") as fh:
                raw = yaml.load(fh, Loader=LOADER) or {}
            return cls(DirectorySchema().load(raw)["people"])
        except FileNotFoundError:
            raise DirectoryError(f"No people directory at {path} (PEOPLE.file).") from None
        except (yaml.YAMLError, ValidationError) as exc:
            raise DirectoryError(f"The people directory {path} is invalid: {exc}") from None

    def get(self, sub):
        return self.people.get(sub)

    def knows(self, sub):
        person = self.people.get(sub)
        return person is not None and person["active"]

    def team_of(self, sub):
        person = self.people.get(sub)
        return person["team"] if person else None

    def members(self, team):
        return list(self._teams.get(team, ()))

    def require_known(self, sub, field="owner_id"):
        """An owner set by a user must be a known, active person (400 otherwise)."""
        if sub is not None and not self.knows(sub):
            raise Invalid(f"{sub!r} is not in the people directory.",
                          errors={field: ["Unknown person."]})
        return sub


class _Cached:
    def __init__(self, path, reload_seconds):
        self.path = path
        self.reload_seconds = reload_seconds
        self.lock = threading.Lock()
        self.mtime = os.stat(path).st_mtime if os.path.exists(path) else None
        self.directory = Directory.load(path)
        self.checked = time.monotonic()

    def current(self):
        if time.monotonic() - self.checked < self.reload_seconds:
            return self.directory
        with self.lock:
            self.checked = time.monotonic()
            try:
                mtime = os.stat(self.path).st_mtime
            except OSError:
                return self.directory  # a ConfigMap swap: keep the last good copy
            if mtime != self.mtime:
                try:
                    self.directory, self.mtime = Directory.load(self.path), mtime
                except DirectoryError:
                    pass  # half-written; the next check reads it again
        return self.directory


_cache = {}


def path_of(config):
    return setting(config, "PEOPLE.file") or "deploy/local/people.yml"


def directory(config):
    """The directory the config names (loaded once per path, then kept current)."""
    path = os.path.abspath(path_of(config))
    cached = _cache.get(path)
    if cached is None:
        cached = _cache[path] = _Cached(path, float(setting(config, "PEOPLE.reload_seconds", 5)))
    return cached.current()
