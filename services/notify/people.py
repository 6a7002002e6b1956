"""Who a `sub` is and how to reach them, from the shared people directory (kit.people,
DESIGN "People"), with notify's defaults filled in (locale, time zone, quiet hours).

Pure: built from the directory's people as kit.people loaded them.
"""
import datetime as dt

from kit.errors import Invalid
from notify.pacing import quiet_until, zone


class Directory:
    def __init__(self, people, *, locale, time_zone, quiet_hours=None):
        self.people = dict(people or {})
        self.defaults = {"locale": locale, "time_zone": time_zone,
                         "quiet_hours": quiet_hours or {}}
        self.check()

    def check(self):
        """Refuse a directory whose time zones or quiet hours do not parse, naming whom: at
        start-up, not at the first event for that person."""
        probe = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        for sub in [None, *self.people]:
            person = self.person(sub) if sub else {**self.defaults, "sub": "(defaults)"}
            try:
                zone(person["time_zone"])
                quiet_until(probe, person["quiet_hours"], person["time_zone"])
            except Invalid as exc:
                raise Invalid(f"People directory, {person['sub']}: {exc.detail}") from None

    def person(self, sub):
        """The person with defaults filled in (locale, time zone, quiet hours), or None."""
        if not sub or sub not in self.people:
            return None
        entry = self.people[sub] or {}
        if entry.get("active") is False:
            return None
        return {"sub": sub, "name": entry.get("name") or sub, "email": entry.get("email"),
                "phone": entry.get("phone"), "team": entry.get("team"),
                "manager": entry.get("manager"), "roles": list(entry.get("roles") or ()),
                "locale": entry.get("locale") or self.defaults["locale"],
                "time_zone": entry.get("time_zone") or self.defaults["time_zone"],
                "quiet_hours": entry.get("quiet_hours") or self.defaults["quiet_hours"]}

    def with_role(self, role):
        found = [self.person(sub) for sub in sorted(self.people)
                 if role in ((self.people[sub] or {}).get("roles") or ())]
        return [person for person in found if person]
