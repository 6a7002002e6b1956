"""The seed records deal histories in rounds: batches go `workers` at a time in import
order, and once a batch meets a deal that is not open yet, the batches after it wait for
the next round unsent (each miss costs the deals service a read for nothing); every item
is recorded once."""
import threading

from bench import seed


class Recording(seed.Seeder):
    """The deals service's answers from a set of open deals (the HTTP call replaced: this
    is the seeder's own bookkeeping under test)."""

    def __init__(self, opened):
        super().__init__("http://leads.invalid", "http://deals.invalid", workers=2,
                         log=lambda _: None)
        self.opened, self.sent, self.lock = set(opened), [], threading.Lock()

    def _history(self, items):
        with self.lock:
            self.sent.append([item["deal_id"] for item in items])
        return [{"deal_id": item["deal_id"], "outcome": "applied"
                 if item["deal_id"] in self.opened else "not_found"} for item in items]


def items(n):
    return [{"deal_id": f"d{i}", "version": 1, "steps": []} for i in range(n)]


def test_a_round_stops_sending_after_the_group_that_met_an_unopened_deal(monkeypatch):
    monkeypatch.setattr(seed, "HISTORY_BATCH", 2)
    todo = items(10)
    seeder = Recording(opened=[f"d{i}" for i in range(5)])  # d5.. not open yet
    counts = {"applied": 0, "stale": 0, "refused": 0}
    with seed.concurrent.futures.ThreadPoolExecutor(2) as pool:
        waiting = seeder._record_round(pool, todo, counts)
    # groups of two batches: [d0 d1][d2 d3], then [d4 d5][d6 d7] meets d5; [d8 d9] unsent
    assert sorted(seeder.sent) == [["d0", "d1"], ["d2", "d3"], ["d4", "d5"], ["d6", "d7"]]
    assert counts["applied"] == 5
    assert [item["deal_id"] for item in waiting] == ["d5", "d6", "d7", "d8", "d9"]


def test_every_deal_is_recorded_once_as_they_open(monkeypatch):
    monkeypatch.setattr(seed, "HISTORY_BATCH", 3)
    monkeypatch.setattr(seed, "HISTORY_POLL_SECONDS", 0)
    seeder = Recording(opened=[])
    rounds = iter(range(100))

    def open_more(items_):
        with seeder.lock:  # two more deals open before each request
            seeder.opened |= {f"lead:{i}" for i in range(2 * next(rounds) + 2)}
        return Recording._history(seeder, items_)

    seeder._history = open_more
    rows = [seed.Row(i, {}, {}, steps=[{"action": "won"}]) for i in range(8)]
    counts = seeder.record_deals(rows, {i: str(i) for i in range(8)}, patience=60)
    assert counts == {"applied": 8, "stale": 0, "refused": 0}
    applied = [d for batch in seeder.sent for d in batch if d in seeder.opened]
    assert sorted(set(applied)) == [f"lead:{i}" for i in range(8)]
