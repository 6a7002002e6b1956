"""The people directory (DESIGN "People"): who a `sub` is and how to reach them.

Pure: built from the parsed directory document. Until the kit reads the shared directory
file, the service loads a YAML file of its own (NOTIFY.people_file) and builds this.
"""


class Directory:
    def __init__(self, people, *, locale, time_zone, quiet_hours=None):
        self.people = dict(people or {})
        self.defaults = {"locale": locale, "time_zone": time_zone,
                         "quiet_hours": quiet_hours or {}}

    def person(self, sub):
        """The person with defaults filled in (locale, time zone, quiet hours), or None."""
        if not sub or sub not in self.people:
            return None
        entry = self.people[sub] or {}
        return {"sub": sub, "name": entry.get("name") or sub, "email": entry.get("email"),
                "phone": entry.get("phone"), "team": entry.get("team"),
                "manager": entry.get("manager"), "roles": list(entry.get("roles") or ()),
                "locale": entry.get("locale") or self.defaults["locale"],
                "time_zone": entry.get("time_zone") or self.defaults["time_zone"],
                "quiet_hours": entry.get("quiet_hours") or self.defaults["quiet_hours"]}

    def with_role(self, role):
        return [self.person(sub) for sub in sorted(self.people)
                if role in ((self.people[sub] or {}).get("roles") or ())]
