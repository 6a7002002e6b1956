"""Who gets a ticket: agents with the ticket's category among their skills ("*" takes
any), available, below their capacity; the least loaded first (by share of capacity,
then count, then id, so the order is stable). The agent who had a reopened ticket comes
first if they qualify. Pure: the store claims the first candidate whose load it can
still raise below the cap, atomically, and tries the next one when another ticket won.
"""
ANY_SKILL = "*"


def skilled(agent, category):
    skills = agent.get("skills") or ()
    return ANY_SKILL in skills or (category is not None and category in skills)


def candidates(agents, category, previous=None):
    """Agent ids in the order to try; empty: the ticket waits in the queue."""
    able = [a for a in agents
            if a.get("available", True) and a["load"] < a["capacity"] and skilled(a, category)]
    able.sort(key=lambda a: (a["_id"] != previous, a["load"] / a["capacity"], a["load"],
                             a["_id"]))
    return [a["_id"] for a in able]


def roster_entry(entry):
    """An agent of the configured roster as the store keeps it."""
    capacity = int(entry.get("capacity", 1))
    if capacity < 1:
        raise ValueError(f"Agent {entry['id']!r} needs a capacity of at least 1.")
    return {"_id": str(entry["id"]), "skills": list(entry.get("skills") or ()),
            "capacity": capacity, "available": bool(entry.get("available", True))}
