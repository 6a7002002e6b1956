"""Lead assignment rules: territory (country/region -> team), round-robin inside the team
skipping reps at their cap of open leads, then a fallback queue.

Pure: the store turns a plan into atomic claims (per-team cursor, per-rep open counts), so
the rules here decide the order and the store makes it race-safe across instances.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Territory:
    name: str
    team: str
    countries: frozenset = frozenset()
    regions: frozenset = frozenset()

    def matches(self, country, region):
        if self.countries and (country or "").upper() not in self.countries:
            return False
        if self.regions and (region or "").strip().lower() not in self.regions:
            return False
        return True


@dataclass(frozen=True)
class Assignment:
    owner_id: str | None
    team: str | None
    queue: str | None
    rule: str


@dataclass(frozen=True)
class AssignmentRules:
    territories: tuple = ()
    teams: dict = None
    default_cap: int = 50
    caps: dict = None
    fallback_queue: str = "unassigned"

    def cap_of(self, rep):
        return int((self.caps or {}).get(rep, self.default_cap))

    def reps_of(self, team):
        return list((self.teams or {}).get(team, ()))

    def team_of(self, rep):
        return next((team for team, reps in (self.teams or {}).items() if rep in reps), None)


def parse_territories(raw):
    return tuple(
        Territory(
            name=str(item["name"]),
            team=str(item["team"]),
            countries=frozenset(str(c).upper() for c in item.get("countries") or ()),
            regions=frozenset(str(r).strip().lower() for r in item.get("regions") or ()),
        )
        for item in raw or ()
    )


def route(country, region, territories):
    """The first territory (in config order) that matches, or None."""
    for territory in territories:
        if territory.matches(country, region):
            return territory
    return None


def plan(reps, start, open_counts, cap_of, n):
    """Round-robin `n` leads over `reps` from cursor `start`, skipping reps at their cap.

    Returns (owners, advanced_by): one owner (or None when every rep is full) per lead, and
    how far the team cursor moves, so the next lead starts after the last rep who got one.
    """
    counts = dict(open_counts)
    owners = []
    pos = start
    for _ in range(n):
        owner = None
        for offset in range(len(reps)):
            rep = reps[(pos + offset) % len(reps)]
            if counts.get(rep, 0) < cap_of(rep):
                owner = rep
                counts[rep] = counts.get(rep, 0) + 1
                pos += offset + 1
                break
        owners.append(owner)
    return owners, pos - start


def rotation(reps, start):
    """Reps in the order a single lead tries them, starting at the team cursor."""
    if not reps:
        return []
    k = start % len(reps)
    return reps[k:] + reps[:k]


def queued(territory, rules):
    return Assignment(owner_id=None, team=territory.team if territory else None,
                      queue=rules.fallback_queue, rule="fallback")
