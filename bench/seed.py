"""`make seed N=100000`: a year of realistic sales history, loaded through the public APIs.

Leads (Chinese and English names and companies, valid e-mails and phones, the territories
and reps of the leads config, sources and UTM tags) go in through the admin's historical CSV
import (POST /api/v1/leads/import?history=true) in chunks of SEED_CHUNK rows (at most
IMPORT.max_rows), `workers` requests at a time, each under an Idempotency-Key of its own, so
a re-run stores nothing twice. A fifth of them were converted:
their lead.converted opens each deal (in a seed pipeline of its own, created through the
pipelines API, whose gates the seed meets: the default one needs accepted quotes) at its
conversion time, and POST /api/v1/deals/history then records its past moves, wins and
losses at their times. A deal's history applies only at the version its conversion left it
at, so a re-run records nothing twice either.

The data is a function of N, the seed and the day the run starts (UTC midnight): the same
command on the same day loads the same rows. URLs come from LEADS_URL, DEALS_URL and
METRICS_URL (default: `make run`'s ports); SEED_TOKEN is sent as a bearer token when set
(an admin's, where AUTH.required is on).
"""
import argparse
import concurrent.futures
import csv
import datetime as dt
import io
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "services"))  # `python -m bench.seed` works without make too

from kit.config import load_config, setting  # noqa: E402

SEED = 18
DAY = dt.timedelta(days=1)
HISTORY_DAYS = 365
CONVERTED_SHARE = 0.2
PIPELINE_NAME = "Seed pipeline"
HISTORY_BATCH = 500
HISTORY_POLL_SECONDS = 1
# leads per import request: small enough that the deals of the first chunks open and get
# their history while the later chunks are imported, large enough to be bulk writes
SEED_CHUNK = 1000
LOST_REASONS = ("price", "competitor", "no_budget", "no_decision", "timing", "no_response",
                "lost_contact")
DISQUALIFY_REASONS = ("no_response", "not_a_fit", "no_budget", "duplicate_contact", "spam")

# --- realistic names -------------------------------------------------------------------------

CN_SURNAMES = (("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"),
               ("杨", "yang"), ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"),
               ("徐", "xu"), ("孙", "sun"), ("马", "ma"), ("朱", "zhu"), ("胡", "hu"),
               ("郭", "guo"), ("何", "he"), ("林", "lin"), ("罗", "luo"), ("高", "gao"))
CN_GIVEN = (("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("秀英", "xiuying"), ("敏", "min"),
            ("静", "jing"), ("丽", "li"), ("强", "qiang"), ("磊", "lei"), ("军", "jun"),
            ("洋", "yang"), ("勇", "yong"), ("艳", "yan"), ("杰", "jie"), ("涛", "tao"),
            ("明", "ming"), ("超", "chao"), ("霞", "xia"), ("建华", "jianhua"),
            ("晓明", "xiaoming"), ("欣怡", "xinyi"), ("子涵", "zihan"), ("浩然", "haoran"))
CN_CITIES = (("北京", "Beijing"), ("上海", "Shanghai"), ("深圳", "Guangdong"),
             ("杭州", "Zhejiang"), ("广州", "Guangdong"), ("成都", "Sichuan"),
             ("苏州", "Jiangsu"), ("南京", "Jiangsu"), ("武汉", "Hubei"), ("西安", "Shaanxi"))
CN_WORDS = ("华信", "星辰", "云帆", "智联", "天成", "恒通", "博远", "中科", "瑞达", "鼎盛")
CN_TRADES = ("科技", "信息技术", "软件", "电子", "贸易", "制造", "网络", "医疗器械")
EN_FIRST = ("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
            "David", "Elizabeth", "Daniel", "Sarah", "Thomas", "Karen", "Anna", "Lukas",
            "Sophie", "Maximilian", "Emma", "Noah", "Olivia", "Liam")
EN_LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson",
           "Anderson", "Taylor", "Moore", "Martin", "Müller", "Schmidt", "Schneider",
           "Fischer", "Weber", "Wagner", "Becker", "Hoffmann")
EN_WORDS = ("Northwind", "Contoso", "Fabrikam", "Bluebird", "Summit", "Granite", "Harbor",
            "Pioneer", "Evergreen", "Silverline", "Redwood", "Alpine")
EN_TRADES = ("Systems", "Labs", "Logistics", "Analytics", "Robotics", "Foods", "Energy",
             "Health", "Software", "Manufacturing")
FREE_MAIL_CN = ("qq.com", "163.com", "126.com")
FREE_MAIL = ("gmail.com", "outlook.com", "yahoo.com")

# country -> (share, regions, legal suffix, currency, phone pattern: prefix + digits of the
# row's index, so every number is unique and valid for phonenumbers)
MARKETS = {
    "CN": (0.40, [c[1] for c in CN_CITIES], "有限公司", "CNY", ("+86 13{d}", "+86 18{d}")),
    "HK": (0.04, ["Hong Kong"], "Limited", "HKD", ("+852 94{d6}",)),
    "TW": (0.04, ["Taipei"], "股份有限公司", "TWD", ("+886 9{d8}",)),
    "US": (0.24, ["CA", "WA", "OR", "NY", "TX", "MA", "IL"], "Inc.", "USD",
           ("+1 415 2{d6}", "+1 206 2{d6}", "+1 212 2{d6}", "+1 512 2{d6}")),
    "CA": (0.04, ["ON", "BC"], "Ltd.", "CAD", ("+1 416 2{d6}",)),
    "DE": (0.10, ["Berlin", "Bayern", "Hamburg"], "GmbH", "EUR", ("+49 151 {d8}",)),
    "AT": (0.03, ["Wien"], "GmbH", "EUR", ("+43 664 {d7}",)),
    "CH": (0.03, ["Zürich"], "AG", "CHF", ("+41 79 {d7}",)),
    "GB": (0.04, ["London"], "Ltd", "GBP", ("+44 7400 {d6}",)),
    "SG": (0.02, ["Singapore"], "Pte. Ltd.", "SGD", ("+65 9{d7}",)),
    "JP": (0.02, ["Tokyo"], "株式会社", "JPY", ("+81 90 1{d7}",)),
}
CHINESE_NAMES = {"CN", "HK", "TW"}
SOURCES = (("web_form", 30), ("ads", 15), ("referral", 10), ("event", 10), ("email", 8),
           ("social", 7), ("partner", 5), ("chat", 5), ("phone", 5), ("api", 5))
CAMPAIGNS = ("spring_launch", "summer_webinar", "autumn_expo", "year_end", "brand")

# Final stages of converted deals: (stage reached, share). Won and lost walk the pipeline.
DEAL_OUTCOMES = (("discovery", 0.14), ("needs_confirmed", 0.10), ("proposal", 0.10),
                 ("quote_negotiation", 0.10), ("contract_payment", 0.06), ("won", 0.30),
                 ("lost", 0.20))
# The seed pipeline: the default one's stages, its gates met by the seed's own steps
# instead of an accepted quote; no stall days (a year of idle deals would all stall at once).
STAGES = (
    {"key": "discovery", "name": "Discovery", "probability": 10},
    {"key": "needs_confirmed", "name": "Needs confirmed", "probability": 25,
     "required_checklist": ["discovery_call_held"]},
    {"key": "proposal", "name": "Proposal", "probability": 50,
     "required_fields": ["needs_summary"]},
    {"key": "quote_negotiation", "name": "Quote & negotiation", "probability": 70,
     "required_fields": ["amount", "currency"]},
    {"key": "contract_payment", "name": "Contract & payment", "probability": 90,
     "required_checklist": ["contract_sent"]},
    {"key": "won", "name": "Won", "probability": 100, "required_fields": ["amount", "currency"]},
    {"key": "lost", "name": "Lost", "probability": 0},
)
# what each stage's gate needs, as the update step that meets it
GATE_STEPS = {"needs_confirmed": {"checklist": ["discovery_call_held"]},
              "proposal": {"needs_summary": "Needs confirmed in the discovery call"},
              "contract_payment": {"checklist": ["contract_sent"]}}
OPEN_STAGES = [s["key"] for s in STAGES if s["key"] not in ("won", "lost")]
COLUMNS = ("name", "company", "email", "phone", "country", "region", "source", "utm_medium",
           "utm_campaign", "industry", "created_at", "status", "contacted_at", "qualified_at",
           "converted_at", "disqualified_at", "reason", "amount", "currency", "owner",
           "pipeline")


@dataclass
class Row:
    index: int
    lead: dict
    history: dict
    deal_outcome: str | None = None
    steps: list = field(default_factory=list)


# --- generation (pure) -----------------------------------------------------------------------


def _digits(index, width):
    return f"{index % 10 ** width:0{width}d}"


def phone_for(country, index, rng):
    pattern = rng.choice(MARKETS[country][4])
    return pattern.format(d=_digits(index, 9)[0] + " " + _digits(index, 8),
                          d6=_digits(index, 6), d7=_digits(index, 7), d8=_digits(index, 8))


def _weighted(rng, pairs):
    return rng.choices([k for k, _ in pairs], weights=[w for _, w in pairs])[0]


def _person(rng, country, index):
    if country in CHINESE_NAMES:
        (surname, sur_py), (given, given_py) = rng.choice(CN_SURNAMES), rng.choice(CN_GIVEN)
        city, _ = rng.choice(CN_CITIES)
        company = f"{city}{rng.choice(CN_WORDS)}{rng.choice(CN_TRADES)}{MARKETS[country][2]}"
        local, free = f"{given_py}.{sur_py}", FREE_MAIL_CN
        name = surname + given
        domain = f"{sur_py}-{rng.randrange(100, 999)}.cn"
    else:
        first, last = rng.choice(EN_FIRST), rng.choice(EN_LAST)
        word = rng.choice(EN_WORDS)
        company = f"{word} {rng.choice(EN_TRADES)} {MARKETS[country][2]}"
        local, free = f"{first}.{last}".lower(), FREE_MAIL
        name = f"{first} {last}"
        domain = f"{word.lower()}-{rng.randrange(100, 999)}.com"
    local = local.replace("ü", "ue")
    email = f"{local}.{index}@{rng.choice(free) if rng.random() < 0.3 else domain}"
    return name, company, email


def _funnel_times(rng, created, now, converted):
    """Contacted, qualified and converted offsets after `created`, squeezed into the time
    that has passed since (a lead of this morning went fast)."""
    offsets = [dt.timedelta(minutes=rng.lognormvariate(4.0, 1.2)),
               dt.timedelta(days=rng.uniform(1, 20)),
               dt.timedelta(days=rng.uniform(1, 14)) if converted else dt.timedelta(0)]
    total = sum(offsets, dt.timedelta(0))
    room = (now - created) - dt.timedelta(minutes=5)
    if total > room:
        offsets = [o * (room / total) for o in offsets]
    times, at = [], created
    for offset in offsets:
        at = at + offset
        times.append(at.replace(microsecond=0))
    return times


def generate(n, now, teams, seed=SEED):
    """The rows of a seed of `n` leads as of `now`: exactly n // 5 converted, the rest
    new, contacted, qualified or disqualified as their age makes likely."""
    rng = random.Random(seed)
    converted = set(rng.sample(range(n), int(n * CONVERTED_SHARE)))
    markets = [(c, m[0]) for c, m in MARKETS.items()]
    rows = []
    for index in range(n):
        country = _weighted(rng, markets)
        region = rng.choice(MARKETS[country][1])
        name, company, email = _person(rng, country, index)
        source = _weighted(rng, SOURCES)
        created = (now - dt.timedelta(seconds=rng.uniform(600, HISTORY_DAYS * 86400))
                   ).replace(microsecond=0)
        lead = {"name": name, "company": company if rng.random() < 0.9 else "",
                "email": email, "phone": phone_for(country, index, rng)
                if rng.random() < 0.85 else "", "country": country, "region": region,
                "source": source, "utm_medium": "cpc" if source == "ads" else "",
                "utm_campaign": rng.choice(CAMPAIGNS) if source in ("ads", "email") else "",
                "industry": rng.choice(("software", "manufacturing", "retail", "finance",
                                        "healthcare", "education"))}
        history = _history(rng, index in converted, created, now, country, teams)
        row = Row(index, lead, history)
        if index in converted:
            row.deal_outcome = _weighted(rng, DEAL_OUTCOMES)
            row.steps = deal_steps(rng, row.deal_outcome, history["converted_at"], now)
        rows.append(row)
    return rows


def _history(rng, converted, created, now, country, teams):
    age_days = (now - created) / DAY
    contacted, qualified, converted_at = _funnel_times(rng, created, now, converted)
    history = {"created_at": created, "status": "new"}
    if converted:
        history.update(status="converted", contacted_at=contacted, qualified_at=qualified,
                       converted_at=converted_at, currency=MARKETS[country][3],
                       amount=_amount(rng, MARKETS[country][3]))
    else:
        reach = rng.random()
        if reach < 0.15:
            history.update(status="new")
        elif reach < 0.70:
            history.update(status="contacted", contacted_at=contacted)
        else:
            history.update(status="qualified", contacted_at=contacted, qualified_at=qualified)
        # older open leads were mostly closed since: disqualified a while after their last step
        if age_days > 21 and rng.random() < 0.9:
            last = history.get("qualified_at") or history.get("contacted_at") or created
            end = min(last + dt.timedelta(days=rng.uniform(1, 14)),
                      now - dt.timedelta(minutes=1))
            history.update(status="disqualified", disqualified_at=end.replace(microsecond=0),
                           reason=rng.choice(DISQUALIFY_REASONS))
    if history["status"] in ("converted", "disqualified"):
        # closed leads keep the rep who had them (open ones are routed by the rules)
        reps = teams.get(_team_of(country, history), [])
        if reps:
            history["owner_id"] = rng.choice(reps)
    return history


def _team_of(country, history):
    return {"CN": "greater_china", "HK": "greater_china", "TW": "greater_china",
            "DE": "dach", "AT": "dach", "CH": "dach", "US": "north_america",
            "CA": "north_america"}.get(country)


def _amount(rng, currency):
    base = rng.lognormvariate(10.3, 0.9)  # around 30,000 in a mid currency
    scale = {"JPY": 150, "TWD": 30, "CNY": 7, "HKD": 8}.get(currency, 1)
    value = round(base * scale, -2)
    return f"{value:.0f}" if currency == "JPY" else f"{value:.2f}"


def expected_close(rng, outcome, converted_at, now):
    """The day a rep expects the deal to close: ahead of today for a deal still open (so
    the forecast has its months), weeks after the conversion for one closed since."""
    if outcome in ("won", "lost"):
        return (converted_at + dt.timedelta(days=rng.randint(14, 90))).date()
    return (now + dt.timedelta(days=rng.randint(7, 180))).date()


def deal_steps(rng, outcome, converted_at, now):
    """The history steps that take a deal from discovery to `outcome`, spread between its
    conversion and now, each gate met by the update step before the move; the first
    update also sets the expected close (one more update where the deal has none)."""
    target = OPEN_STAGES[-1] if outcome == "won" else outcome
    if outcome == "lost":
        target = rng.choice(OPEN_STAGES)
    path = OPEN_STAGES[1:OPEN_STAGES.index(target) + 1]
    close = {"expected_close": expected_close(rng, outcome, converted_at, now).isoformat()}
    actions = []
    for stage in path:
        if stage in GATE_STEPS:
            actions.append({"action": "update", "fields": GATE_STEPS[stage]})
        actions.append({"action": "move", "stage": stage})
    if outcome == "won":
        actions.append({"action": "won"})
    elif outcome == "lost":
        actions.append({"action": "lost", "reason": rng.choice(LOST_REASONS)})
    if actions and actions[0]["action"] == "update":
        actions[0] = {**actions[0], "fields": {**actions[0]["fields"], **close}}
    else:
        actions.insert(0, {"action": "update", "fields": close})
    room = (now - converted_at).total_seconds() - 60
    at = converted_at
    steps = []
    for action in actions:
        gap = min(rng.uniform(0.5, 12) * 86400, room / (len(actions) + 1))
        at = at + dt.timedelta(seconds=max(gap, 1))
        steps.append({**action, "at": at.isoformat()})
    return steps


def csv_chunk(rows, pipeline_id):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in rows:
        history = row.history
        values = {**row.lead, **{k: v.isoformat() if isinstance(v, dt.datetime) else v
                                 for k, v in history.items()}}
        values["owner"] = history.get("owner_id", "")
        values["pipeline"] = pipeline_id if history["status"] == "converted" else ""
        writer.writerow([values.get(c) or "" for c in COLUMNS])
    return out.getvalue().encode("utf-8")


# --- loading (HTTP) --------------------------------------------------------------------------


class Seeder:
    def __init__(self, leads_url, deals_url, token=None, chunk=10_000, workers=2, log=print):
        self.leads_url, self.deals_url = leads_url.rstrip("/"), deals_url.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.chunk, self.workers, self.log = chunk, workers, log

    def pipeline(self):
        """The seed pipeline's id, created through the pipelines API the first time."""
        resp = self.session.get(f"{self.deals_url}/api/v1/pipelines", timeout=30)
        resp.raise_for_status()
        for item in resp.json()["items"]:
            if item["name"] == PIPELINE_NAME:
                return item["id"]
        resp = self.session.post(f"{self.deals_url}/api/v1/pipelines", timeout=30,
                                 json={"name": PIPELINE_NAME, "stages": list(STAGES)})
        resp.raise_for_status()
        return resp.json()["id"]

    def import_leads(self, rows, pipeline_id, run_key, on_chunk=None):
        """Returns (totals, {row index: lead id}). Converted leads go first: their deals
        open while the relay still publishes the other leads' events. `on_chunk(rows,
        ids)` is called with each chunk's rows and lead ids as soon as it is stored."""
        rows = sorted(rows, key=lambda r: r.deal_outcome is None)
        chunks = [rows[i:i + self.chunk] for i in range(0, len(rows), self.chunk)]
        totals = {"rows": 0, "created": 0, "duplicates": 0, "invalid": 0, "replayed": 0}
        ids = {}

        def send(number):
            body = csv_chunk(chunks[number], pipeline_id)
            for attempt in range(30):
                resp = self.session.post(
                    f"{self.leads_url}/api/v1/leads/import", params={"history": "true"},
                    data=body, timeout=900, headers={
                        "Content-Type": "text/csv; charset=utf-8",
                        "Idempotency-Key": f"{run_key}-leads-{number}"})
                if resp.status_code == 409 and attempt < 29:  # still running: a retry
                    time.sleep(2)
                    continue
                if resp.status_code != 200:
                    raise RuntimeError(f"import chunk {number}: {resp.status_code} {resp.text}")
                return number, resp.json(), resp.headers.get("Idempotent-Replayed") == "true"
            raise RuntimeError(f"import chunk {number} kept running")

        with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
            for number, result, replayed in pool.map(send, range(len(chunks))):
                for key in ("rows", "created", "duplicates", "invalid"):
                    totals[key] += result[key]
                totals["replayed"] += replayed
                for error in result["errors"][:3]:
                    self.log(f"  chunk {number} line {error['line']}: {error}")
                for stored in result.get("leads") or []:
                    # line 1 is the header, each row one line (no cell holds a line break)
                    ids[chunks[number][stored["line"] - 2].index] = stored["id"]
                if on_chunk is not None:
                    on_chunk(chunks[number], ids)
                self.log(f"  leads chunk {number + 1}/{len(chunks)}: "
                         f"{result['created']} created{' (replayed)' if replayed else ''}")
        return totals, ids

    def record_deals(self, rows, ids, patience=None):
        """Record each converted lead's deal history once its deal exists (lead.converted
        reaches the deals service asynchronously). Returns {outcome: count}."""
        todo = [{"deal_id": f"lead:{ids[r.index]}", "version": 1, "steps": r.steps}
                for r in rows if r.steps and r.index in ids]
        counts = {"applied": 0, "stale": 0, "refused": 0}
        # the leads' outbox relay publishes lead by lead: its pace, not ours, decides this
        patience = patience or 600 + len(rows) / 20
        deadline = time.monotonic() + patience
        with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
            while todo:
                waiting = self._record_round(pool, todo, counts)
                if waiting and time.monotonic() > deadline:
                    raise RuntimeError(f"{len(waiting)} converted leads have no deal after "
                                       f"{patience} s: is lead.converted consumed?")
                if waiting:
                    self.log(f"  {len(waiting)} deals not opened yet; waiting")
                    time.sleep(HISTORY_POLL_SECONDS)
                todo = waiting
        return counts

    def _record_round(self, pool, todo, counts):
        """Send `todo` in batches, `workers` at a time, and return the items whose deal is
        not open yet. Deals open in about the order their leads were imported: once a
        batch meets one that is not open, the batches after it wait for the next round
        unsent (each such miss costs the deals service a read for nothing)."""
        batches = [todo[i:i + HISTORY_BATCH] for i in range(0, len(todo), HISTORY_BATCH)]
        waiting, sent = [], 0
        while sent < len(batches) and not waiting:
            group = batches[sent:sent + self.workers]
            sent += len(group)
            for batch, outcomes in zip(group, pool.map(self._history, group), strict=True):
                for item, outcome in zip(batch, outcomes, strict=True):
                    if outcome["outcome"] == "not_found":
                        waiting.append(item)
                        continue
                    counts[outcome["outcome"]] += 1
                    if outcome["outcome"] == "refused" and counts["refused"] <= 3:
                        self.log(f"  deal {outcome['deal_id']}: {outcome['error']}")
        return waiting + [item for batch in batches[sent:] for item in batch]

    def _history(self, items):
        resp = self.session.post(f"{self.deals_url}/api/v1/deals/history", timeout=900,
                                 json={"items": items})
        if resp.status_code != 200:
            raise RuntimeError(f"deal history: {resp.status_code} {resp.text}")
        return resp.json()["items"]


def teams_from_config():
    config = load_config(ROOT / "services" / "leads" / "config.yml")
    return {str(k): list(v or ()) for k, v in (setting(config, "ASSIGNMENT.teams") or {}).items()}


def import_chunk_size():
    config = load_config(ROOT / "services" / "leads" / "config.yml")
    return min(SEED_CHUNK, int(setting(config, "IMPORT.max_rows", 10_000)))


def seed(n, leads_url, deals_url, token=None, seed_value=SEED, now=None, workers=2, log=print):
    """Load `n` leads and their deals; returns a report of what was loaded, with seconds."""
    now = now or dt.datetime.now(dt.UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    started = time.monotonic()
    rows = generate(n, day, teams_from_config(), seed_value)
    generated = time.monotonic()
    seeder = Seeder(leads_url, deals_url, token, import_chunk_size(), workers, log)
    pipeline_id = seeder.pipeline()
    # the chunk size is part of the key: a chunk's key is bound to its rows
    run_key = f"seed-{seed_value}-{n}-{day:%Y%m%d}-c{seeder.chunk}"
    log(f"seeding {n} leads ({run_key}) into {leads_url}, deals into {deals_url}")
    # a chunk's deal histories are recorded while the next chunks are imported (the
    # converted leads come first): the history no longer waits for the last lead
    recorder = concurrent.futures.ThreadPoolExecutor(1)
    recording = []

    def record(chunk, ids):
        mine = [r for r in chunk if r.steps and r.index in ids]
        if mine:
            recording.append(recorder.submit(seeder.record_deals, mine, dict(ids)))

    try:
        leads, ids = seeder.import_leads(rows, pipeline_id, run_key, on_chunk=record)
        imported = time.monotonic()
        deals = {"applied": 0, "stale": 0, "refused": 0}
        for done_chunk in recording:
            for outcome, n in done_chunk.result().items():
                deals[outcome] += n
    finally:
        recorder.shutdown(wait=False, cancel_futures=True)
    done = time.monotonic()
    return {"leads": leads, "converted": sum(1 for r in rows if r.deal_outcome),
            "deal_histories": sum(1 for r in rows if r.steps),
            "deals": deals, "pipeline_id": pipeline_id,
            "seconds": {"generate": round(generated - started, 1),
                        "import_leads": round(imported - generated, 1),
                        "deal_history_after_import": round(done - imported, 1),
                        "total": round(done - started, 1)}}


def local_admin_token():
    """An admin's token from the local key pair `make run` created, if there is one."""
    from kit.devtokens import PRIVATE, mint

    private = ROOT / "var" / "auth" / PRIVATE
    return mint(private.read_bytes(), "ada", ["admin"], "ops") if private.exists() else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=int(os.environ.get("N", 100_000)))
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    import json

    report = seed(args.n, os.environ.get("LEADS_URL", "http://127.0.0.1:8001"),
                  os.environ.get("DEALS_URL", "http://127.0.0.1:8002"),
                  os.environ.get("SEED_TOKEN") or local_admin_token(), args.seed,
                  workers=args.workers)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
