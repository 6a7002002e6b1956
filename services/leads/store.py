"""MongoDB queries of the leads service; nothing else touches its collections.

Collections: `leads` (a lead, its recent activities and its outbox), `lead_activities`
(the rest of each lead's activities, in buckets: kit.buckets), `tasks` (follow-ups and their
outbox), `reps` (open leads per rep, the cap counter), `imports` (results by
Idempotency-Key), `rate_buckets` (public capture's rate-limit windows, see leads.capture).

A team's round-robin position is each instance's own (`_cursors`), so an assignment costs
one round trip: the rep's guarded claim. The cap is shared and exact (the claim); the
rotation is per instance, seeded from the team's reps' counters (`touched` moves with every
claim and release), so a restarted instance does not start over at the first rep. With N
instances each rotates through the team on its own: the shares even out over the leads,
but two leads in a row may go to one rep when different instances take them.
"""
import dataclasses
import logging

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from kit import versioned
from kit.buckets import BucketLog
from kit.config import setting
from kit.errors import Conflict, NotFound
from kit.fields import utcnow
from kit.mongo import BaseStore, as_stored
from kit.outbox import AUDIT, OUTBOX, SINCE, new_document, with_audit
from kit.paging import keyset_filter
from leads import accounts, domain, erasure, search
from leads import assignment as rules_of_assignment
from leads import keys as lead_keys
from leads.domain import DuplicateLead
from leads.records_store import RECORD_COLLECTIONS, RecordsStore, record_logs

log = logging.getLogger(__name__)

HIDDEN = {"outbox": 0, "outbox_since": 0, "outbox_audit": 0, "activities": 0,
          "email_key": 0, "phone_key": 0, "name_key": 0, "company_key": 0}
DUPLICATE_KEY = 11000
# each lead's activities but its recent ones, in buckets (kit.buckets)
ACTIVITIES = "lead_activities"
NOT_IMPLEMENTED = 238

__all__ = ["DuplicateLead", "LeadsStore"]


def activity_log(config):
    """The leads' activity log (kit.buckets), as configured (ACTIVITIES)."""
    return BucketLog("activities", ACTIVITIES,
                     size=int(setting(config, "ACTIVITIES.bucket_size", 100)),
                     recent=int(setting(config, "ACTIVITIES.recent", 5)))


def _lead_write(change):
    return dataclasses.replace(
        change, set={**change.set, **lead_keys.keys(change.set),
                     "updated_at": domain.to_millis(utcnow())})


class LeadsStore(RecordsStore, BaseStore):
    outbox_collections = ("leads", "tasks", *RECORD_COLLECTIONS)

    def __init__(self, db, config=None):
        super().__init__(db, config)
        self.activity_log = activity_log(self.config)
        self.record_logs = record_logs(self.config)
        self.bucket_logs = {"leads": self.activity_log, **self.record_logs}
        self._cursors = {}  # team -> this instance's round-robin position
        self._leads = versioned.Versioned(
            db.leads, what="lead", as_write=_lead_write, touched=self.touched,
            unique_conflict="Another lead already has this e-mail or phone.",
            log=self.activity_log)
        self._tasks = versioned.Versioned(db.tasks, what="follow-up", touched=self.touched)

    def ensure_indexes(self):
        with self.index_batch() as db:  # one createIndexes per collection
            self._declare_indexes(db)
        self._ensure_bucket_expiry()

    def _declare_indexes(self, db):
        leads = db.leads
        # Identity: always-present keys (see domain.identity_keys) make the race-safe dedup.
        leads.create_index("email_key", unique=True, name="email_key_unique")
        leads.create_index("phone_key", unique=True, name="phone_key_unique")
        self.ensure_record_indexes(db)  # their unique keys too, before anything else
        # lists: newest first, filtered by one field (keyset pages read one page)
        leads.create_index([("created_at", DESCENDING), ("_id", DESCENDING)], name="created")
        # `team` keeps a manager's list (kit.permissions TEAM) on an index too
        for field in ("owner_id", "status", "source", "grade", "team"):
            leads.create_index([(field, ASCENDING), ("created_at", DESCENDING),
                                ("_id", DESCENDING)], name=f"{field}_created")
        # a rep's open leads, counted when its counter is checked (recount_reps)
        leads.create_index([("owner_id", ASCENDING), ("status", ASCENDING)],
                           name="owner_status")
        leads.create_index("response_due_at", name="response_due")
        # search (leads.search): one range per normalised key, walked in (key, _id) order
        for field in search.KEYS.values():
            leads.create_index([(field, ASCENDING), ("_id", ASCENDING)], name=f"search_{field}")
        db.tasks.create_index([("fired", ASCENDING), ("due_at", ASCENDING)], name="due")
        db.tasks.create_index("lead_id", name="lead")

    def _ensure_bucket_expiry(self):
        """MongoDB removes expired rate-limit buckets itself (TTL); FerretDB v1 has no TTL
        indexes (NotImplemented), so there the capture sweep removes them by `_id` range."""
        try:
            self.db.rate_buckets.create_index("expires_at", expireAfterSeconds=0,
                                              name="expiry")
        except OperationFailure as exc:
            if exc.code != NOT_IMPLEMENTED:
                raise

    # --- events ----------------------------------------------------------------------------

    @staticmethod
    def events_for(subject, version, pairs, actor=None):
        """CloudEvents for (type, data) pairs; each event bumps the entity version by one."""
        return versioned.events(subject, version, pairs, actor=actor)

    # --- reading ---------------------------------------------------------------------------

    def get(self, lead_id, *, full=False):
        projection = {"outbox": 0, "outbox_since": 0} if full else HIDDEN
        doc = self.db.leads.find_one({"_id": lead_id}, projection)
        if doc is None:
            raise NotFound(f"No lead {lead_id}.")
        return doc

    def activities(self, lead):
        """The whole activity log of `lead` (read with `full`), oldest first: its recent
        entries and its buckets, read by `_id` (as an erasure left them)."""
        return erasure.as_erased(lead, self.activity_log.whole(self.db, lead))

    def activity_page(self, lead_id, before=None, limit=50):
        """A lead's activities newest first below the entry number `before`, and the next
        page's cursor (None at the first entry)."""
        doc = self.db.leads.find_one({"_id": lead_id}, self.activity_log.projection())
        if doc is None:
            raise NotFound(f"No lead {lead_id}.")
        return self.activity_log.page(self.db, doc, before, limit)

    def find_duplicate(self, email, phone):
        keys = domain.real_keys(email, phone)
        if not keys:
            return None
        doc = self.db.leads.find_one({"$or": [{k: v} for k, v in keys.items()]}, {"_id": 1})
        return doc["_id"] if doc else None

    def page(self, filters, limit, after=None):
        """Newest first; `after` is (created_at, _id) of the last lead of the previous page."""
        query = dict(filters)
        if after is not None:
            query.update(keyset_filter(after, descending=True))
        docs = self.db.leads.find(query, HIDDEN).sort(
            [("created_at", DESCENDING), ("_id", DESCENDING)]).limit(limit + 1)
        docs = list(docs)
        return docs[:limit], len(docs) > limit

    # --- capture ---------------------------------------------------------------------------

    def insert_new(self, lead, assignment_rules, actor=None, owner=None, audit=None):
        """Assign and insert a new lead with lead.created and lead.assigned in its outbox
        (to `owner`, an Assignment, when the caller decided it: a rep's own capture), and
        the request's audit entry (kit.audit `carried`) when given.
        Raises DuplicateLead when the unique indexes find the same e-mail or phone."""
        # a known person's new lead belongs to their account (leads.accounts)
        lead.update(accounts.known_customer(self.contact_by_identity(lead.get("email"),
                                                                     lead.get("phone"))))
        if owner is not None:
            self.db.reps.update_one({"_id": owner.owner_id},
                                    {"$inc": {"open": 1, "touched": 1}}, upsert=True)
            chosen = owner
        else:
            chosen = self.assign(lead.get("country"), lead.get("region"), assignment_rules)
        lead.update(domain.assignment_fields(chosen))
        try:
            self.db.leads.insert_one(with_audit(versioned.new_entity(
                self.activity_log.start(lead), domain.created_events(lead, chosen),
                actor=actor), audit, insert=True))
        except DuplicateKeyError:
            self.release(chosen.owner_id)
            existing = self.find_duplicate(lead.get("email"), lead.get("phone"))
            if existing is None:  # the other insert is gone again: report, never guess
                raise Conflict("A lead with this e-mail or phone was being created.") from None
            raise DuplicateLead(existing) from None
        self.touched("leads", lead["_id"], as_stored(lead))
        for hidden in (OUTBOX, SINCE, AUDIT):
            lead.pop(hidden, None)
        return lead

    def insert_batch(self, leads):
        """Insert prepared leads (with their outboxes); returns the indexes refused as
        duplicates (e-mail, phone or a deterministic _id stored by an earlier attempt)."""
        if not leads:
            return []
        failed = []
        # marked as waiting from the insert on, not from when the chunk was prepared: the
        # relay trusts its copies only while no sweep could have taken them (kit.outbox)
        now = utcnow()
        for lead in leads:
            self.activity_log.start(lead)
            if SINCE in lead:
                lead[SINCE] = now
        try:
            self.db.leads.insert_many(leads, ordered=False)
        except BulkWriteError as exc:
            for error in exc.details.get("writeErrors", []):
                if error.get("code") != DUPLICATE_KEY:
                    raise
                failed.append(error["index"])
        failed_set = set(failed)
        for i, lead in enumerate(leads):
            if i not in failed_set:
                # as inserted: the relay need not read the chunk's leads back (on FerretDB
                # each read decodes the whole document, outbox and all)
                self.touched("leads", lead["_id"], as_stored(lead))
        return sorted(failed_set)

    def existing_by_keys(self, emails, phones):
        """{identity key value: lead id} for those already stored."""
        found = {}
        for field, values in (("email_key", emails), ("phone_key", phones)):
            values = sorted(set(values))
            for start in range(0, len(values), 500):
                chunk = values[start:start + 500]
                for doc in self.db.leads.find({field: {"$in": chunk}}, {field: 1}):
                    found[doc[field]] = doc["_id"]
        return found

    def exists(self, lead_id):
        return self.db.leads.find_one({"_id": lead_id}, {"_id": 1}) is not None

    # --- changes ---------------------------------------------------------------------------

    def change(self, lead_id, decide, *, current=None, actor=None, expected=None,
               audit=None):
        """A versioned change (kit.versioned): `decide(lead)` returns a domain.Change or
        None (nothing to do). Returns (lead after, change) or (lead, None). The rep's
        open-lead counter follows the lead, as the domain says. `expected`: the version
        the caller read (If-Match); `audit`: the request's entry, for the write to carry
        (kit.versioned `carries`)."""
        seen = {}

        def remember(lead):
            seen["before"] = lead
            return decide(lead)

        after, change = self._leads.change(lead_id, remember, current=current, actor=actor,
                                           expected=expected, audit=audit)
        if change is not None:
            self.release(domain.released_owner(seen["before"], after))
            self.hold_many([o for o in [domain.reclaimed_owner(seen["before"], after)] if o])
        return after, change

    def erase(self, lead_id, decide):
        """An erasure (leads.erasure): the lead's change, then its follow-ups' notes. The
        notes go after the lead and on every call, so a repeated request completes an
        erasure that stopped between the two."""
        after, change = self.change(lead_id, decide)
        self.blank_buckets(after)
        self.db.tasks.update_many({"lead_id": lead_id, "note": {"$ne": None}},
                                  {"$set": {"note": None}})
        return after, change

    def blank_buckets(self, lead):
        """Blank the free text of the lead's activities in its buckets (leads.erasure)."""
        self.blank_log(self.activity_log, lead)

    def reassign(self, lead_id, decide, new_owner):
        """A manager's reassignment: the new owner's slot is taken regardless of the cap."""
        if new_owner:
            self.db.reps.update_one({"_id": new_owner}, {"$inc": {"open": 1, "touched": 1}},
                                    upsert=True)
        try:
            after, change = self.change(lead_id, decide)
        except Exception:
            self.release(new_owner)
            raise
        if change is None:
            self.release(new_owner)
        return after, change

    # --- assignment ------------------------------------------------------------------------

    def assign(self, country, region, rules, exclude=()):
        """Territory -> round-robin over the team's reps below their cap -> fallback queue.
        Each slot is claimed with a guarded $inc, so instances racing for the same team
        never push a rep over the cap; the rotation's position is this instance's."""
        territory = rules_of_assignment.route(country, region, rules.territories)
        reps = [r for r in rules.reps_of(territory.team) if r not in exclude] if territory \
            else []
        if reps:
            start = self._position(territory.team, rules.reps_of(territory.team))
            self._cursors[territory.team] += 1
            for offset, rep in enumerate(rules_of_assignment.rotation(reps, start)):
                if self.claim(rep, rules.cap_of(rep), 1):
                    if offset:
                        self._cursors[territory.team] += offset
                    return rules_of_assignment.Assignment(
                        owner_id=rep, team=territory.team, queue=None, rule=territory.name)
        return rules_of_assignment.queued(territory, rules)

    def assign_batch(self, leads, rules):
        """Assignments for many leads (an import) with one claim per rep instead of one per
        lead; leads whose planned rep filled up meanwhile go through `assign` one by one."""
        result = [None] * len(leads)
        by_team = {}
        for i, lead in enumerate(leads):
            territory = rules_of_assignment.route(lead.get("country"), lead.get("region"),
                                                  rules.territories)
            if territory is None or not rules.reps_of(territory.team):
                result[i] = rules_of_assignment.queued(territory, rules)
            else:
                by_team.setdefault((territory.team, territory), []).append(i)
        # A territory name is kept per lead; the team's cursor and reps are shared.
        teams = {}
        for (team, territory), idx in by_team.items():
            teams.setdefault(team, []).append((territory, idx))
        for team, groups in teams.items():
            reps = rules.reps_of(team)
            indexes = [i for _, idx in groups for i in idx]
            territory_of = {i: t for t, idx in groups for i in idx}
            start = self._position(team, reps)
            counts = {d["_id"]: d.get("open", 0)
                      for d in self.db.reps.find({"_id": {"$in": reps}})}
            owners, moved = rules_of_assignment.plan(
                reps, start, counts, rules.cap_of, len(indexes))
            self._cursors[team] += moved
            wanted = {}
            for i, owner in zip(indexes, owners, strict=True):
                wanted.setdefault(owner, []).append(i)
            for owner, rows in wanted.items():
                if owner is None:  # every rep was full when we looked
                    for i in rows:
                        result[i] = rules_of_assignment.queued(territory_of[i], rules)
                    continue
                if self.claim(owner, rules.cap_of(owner), len(rows)):
                    for i in rows:
                        result[i] = rules_of_assignment.Assignment(
                            owner_id=owner, team=team, queue=None,
                            rule=territory_of[i].name)
                    continue
                for i in rows:  # the rep filled up meanwhile: one by one, cap-checked
                    result[i] = self.assign(leads[i].get("country"), leads[i].get("region"),
                                            rules)
        return result

    def _position(self, team, reps):
        """This instance's round-robin position in `team`; the first time, the sum of its
        reps' `touched` stamps (one read per team while the instance runs)."""
        if team not in self._cursors:
            seed = sum(d.get("touched", 0) for d in self.db.reps.find(
                {"_id": {"$in": list(reps)}}, {"touched": 1}))
            self._cursors.setdefault(team, seed)
        return self._cursors[team]

    def claim(self, rep, cap, k):
        """Take `k` slots of `rep` if that keeps them within `cap` (one atomic update)."""
        if k > cap:
            return False
        try:
            doc = self.db.reps.find_one_and_update(
                {"_id": rep, "open": {"$lte": cap - k}}, {"$inc": {"open": k, "touched": 1}},
                upsert=True,
                return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            return False  # the rep's document exists and is at the cap: the upsert collided
        return doc is not None

    def release(self, rep, k=1):
        if rep and k:
            self.db.reps.update_one({"_id": rep}, {"$inc": {"open": -k, "touched": 1}})

    def hold_many(self, owners):
        """Take a slot per lead for each owner, regardless of the cap (as a manager may)."""
        counts = {}
        for owner in owners:
            counts[owner] = counts.get(owner, 0) + 1
        for owner, k in counts.items():
            self.db.reps.update_one({"_id": owner}, {"$inc": {"open": k, "touched": 1}},
                                    upsert=True)

    def release_many(self, owners):
        counts = {}
        for owner in owners:
            if owner:
                counts[owner] = counts.get(owner, 0) + 1
        for owner, k in counts.items():
            self.release(owner, k)

    def recount_reps(self):
        """Correct open-lead counters that drifted from the leads (a crash between a lead's
        write and its rep's counter update leaves one off by one).

        Only a counter untouched since this instance's previous pass is checked: every
        claim and release stamps it, so a claim still between its $inc and its lead's
        insert is never undone, and the correcting write is conditional on the stamp.
        A counter checked at its current stamp (`verified`) is not counted again, so an
        idle platform counts nothing, and a check counts one rep's open leads by index.
        Returns {rep: (was, now)} for the counters it corrected.
        """
        previous, seen, fixed = getattr(self, "_recount_seen", {}), {}, {}
        # one small document per rep: bounded by the sales team, not by the leads
        for rep in self.db.reps.find({}):
            stamp = rep.get("touched", 0)
            seen[rep["_id"]] = stamp
            if previous.get(rep["_id"]) != stamp or rep.get("verified") == stamp:
                continue
            actual = self.db.leads.count_documents(
                {"owner_id": rep["_id"], "status": {"$in": sorted(domain.OPEN)}})
            guard = {"touched": stamp} if "touched" in rep else {"touched": {"$exists": False}}
            if rep.get("open", 0) == actual:
                self.db.reps.update_one({"_id": rep["_id"], **guard},
                                        {"$set": {"verified": stamp}})
                continue
            done = self.db.reps.update_one(
                {"_id": rep["_id"], **guard},
                {"$set": {"open": actual, "verified": stamp + 1}, "$inc": {"touched": 1}})
            if done.modified_count:
                fixed[rep["_id"]] = (rep.get("open", 0), actual)
                seen[rep["_id"]] = stamp + 1
        self._recount_seen = seen
        return fixed

    def open_counts(self):
        return {d["_id"]: d.get("open", 0) for d in self.db.reps.find({})}

    # --- follow-up tasks -------------------------------------------------------------------

    def insert_task(self, task):
        self.db.tasks.insert_one(new_document(task, []))
        return task

    def tasks_of(self, lead_id):
        return list(self.db.tasks.find(
            {"lead_id": lead_id}, {"outbox": 0, "outbox_since": 0}).sort("due_at", ASCENDING))

    def fire_due_tasks(self, now, limit=200, actor=None):
        """Fire due follow-ups as the domain says; the versioned write is the claim, so
        with N instances each task fires once. Returns tasks fired."""
        due = list(self.db.tasks.find({"fired": False, "due_at": {"$lte": now}},
                                      {"outbox": 0, "outbox_since": 0}).sort(
            "due_at", ASCENDING).limit(limit))
        if not due:
            return 0
        leads = {d["_id"]: d for d in self.db.leads.find(
            {"_id": {"$in": list({t["lead_id"] for t in due})}},
            {"owner_id": 1, "status": 1})}
        fired = 0
        for task in due:
            _, change = self._tasks.change(task["_id"], lambda t: domain.fire_followup(
                t, leads.get(t["lead_id"]), now), current=task, actor=actor)
            if change is not None and change.events:
                fired += 1
        return fired

    # --- response SLA ----------------------------------------------------------------------

    def fire_overdue(self, now, rules, limit=200, actor=None):
        """Report leads nobody contacted within the response SLA, once each: the version
        check of `change` is the atomic claim, and a lead whose clock was stopped or fired
        meanwhile is left alone. Returns leads reported."""
        due = self.db.leads.find({"response_due_at": {"$lte": now}},
                                 {"_id": 1, "country": 1, "region": 1, "owner_id": 1})
        fired = 0
        for lead in list(due.limit(limit)):
            moved = None
            if rules.reassign_overdue:
                moved = self.assign(lead.get("country"), lead.get("region"), rules.assignment,
                                    exclude={lead.get("owner_id")})

            try:
                _, change = self.change(lead["_id"], lambda current, moved=moved:
                                        domain.response_overdue(current, now, moved),
                                        actor=actor)
            except Exception:
                self.release(moved.owner_id if moved else None)
                raise
            if change is None:
                self.release(moved.owner_id if moved else None)
            else:
                fired += 1
        return fired

    # --- imports ---------------------------------------------------------------------------

    def find_import(self, key):
        return self.db.imports.find_one({"_id": key})

    def begin_import(self, key, body_hash, attempt, now, by=None, historical=False):
        """Records a running import under `key` (who started it, and whether its rows carry
        their history); returns None, or what is recorded already."""
        try:
            self.db.imports.insert_one({"_id": key, "body_hash": body_hash, "status": "running",
                                        "attempt": attempt, "started_at": now,
                                        "heartbeat_at": now, "by": by,
                                        "historical": historical})
        except DuplicateKeyError:
            return self.find_import(key) or {}
        return None

    def take_over_import(self, key, previous, attempt, body_hash, now):
        """Claims a running import from the attempt that held it (one that stopped renewing
        its lease); False when another request claimed or finished it first."""
        held_by = previous if previous is not None else {"$exists": False}
        claimed = self.db.imports.update_one(
            {"_id": key, "status": "running", "attempt": held_by},
            {"$set": {"attempt": attempt, "body_hash": body_hash, "heartbeat_at": now}})
        return claimed.matched_count == 1

    def renew_import(self, key, attempt, now):
        """Renews the attempt's lease; False when another request took the import over."""
        renewed = self.db.imports.update_one(
            {"_id": key, "status": "running", "attempt": attempt},
            {"$set": {"heartbeat_at": now}})
        return renewed.matched_count == 1

    def finish_import(self, key, attempt, result, now):
        self.db.imports.update_one({"_id": key, "attempt": attempt}, {"$set": {
            "status": "done", "result": result, "finished_at": now}})

    # --- public capture rate limits ---------------------------------------------------------

    def count_hit(self, bucket_id, expires_at):
        """Count one request in a rate-limit window and return the window's count: one
        atomic upsert by `_id`, so instances sharing the database share the limit."""
        for _ in range(2):
            try:
                doc = self.db.rate_buckets.find_one_and_update(
                    {"_id": bucket_id},
                    {"$inc": {"n": 1}, "$setOnInsert": {"expires_at": expires_at}},
                    upsert=True, return_document=ReturnDocument.AFTER)
                return doc["n"]
            except DuplicateKeyError:
                continue  # two first hits raced to insert: the other one exists now
        raise Conflict("The rate limit is contended; retry.")

    def sweep_rate_buckets(self, now):
        """Remove windows that ended (ids start with their end, see leads.capture.bucket)."""
        cutoff = f"{int(now.timestamp()):012d};"
        return self.db.rate_buckets.delete_many({"_id": {"$lt": cutoff}}).deleted_count

    # --- search (leads.search) -------------------------------------------------------------

    def other_lead_with(self, lead_id, keys):
        """Another lead holding one of these e-mail/phone values, or None."""
        wanted = domain.real_keys(keys.get("email"), keys.get("phone"))
        for key, value in wanted.items():
            doc = self.db.leads.find_one({key: value}, {"_id": 1})
            if doc is not None and doc["_id"] != lead_id:
                return doc["_id"]
        return None

    def search(self, searched, filters, position, limit, descending=False):
        """[(field, rows)] for each (field, prefix) searched, limit + 1 rows each."""
        return [(field, self.search_range(field, prefix, filters, position, limit + 1,
                                          descending)) for field, prefix in searched]

    def search_range(self, field, prefix, filters, position, limit, descending=False):
        """Leads whose `field` starts with `prefix`, after `position` in (field, _id) order;
        `filters` are equalities checked on the index range's rows."""
        order = DESCENDING if descending else ASCENDING
        query = {**filters, **search.query(field, prefix, position, descending)}
        return list(self.db.leads.find(query, {"outbox": 0, "outbox_since": 0,
                                               "activities": 0})
                    .sort([(field, order), ("_id", order)]).limit(limit))

    # --- finishing follow-ups (kit.activities) ----------------------------------------------

    def change_task(self, lead_id, task_id, decide):
        """A versioned change of one of the lead's follow-ups (404 for another lead's)."""
        def of_lead(task):
            if task["lead_id"] != lead_id:
                raise NotFound(f"No follow-up {task_id} on lead {lead_id}.")
            return decide(task)

        task, _ = self._tasks.change(task_id, of_lead)
        return task
