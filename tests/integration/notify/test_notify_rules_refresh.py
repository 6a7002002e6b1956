"""Notify's rules are read once per refresh, however many workers find them stale at once
(real broker and database; the store's read is wrapped to count it and made slow, as a
busy database makes it)."""
from unittest import mock

import eventlet
from pymongo.errors import AutoReconnect

from kit.fields import utcnow
from notify.notifier import Notifier
from notify.store import NotifyStore
from tests.integration.notify.notify_support import (
    event,
    notifier_of,
    notify_config,
    publish,
    start_notify,
)
from tests.support.wait import wait_for

EVENTS = 30


def historical_assignment(n):
    # historical: the configured rule plans nothing for it, so no mail is waited for
    return event("lead.assigned", f"L-r{n}", lead_id=f"L-r{n}", owner_id="ann", team="gc",
                 rule="import", status="new", historical=True)


def test_concurrent_workers_share_one_read_of_the_rules(
        container_factory, make_config, rabbit_config, tmp_path, inbox):
    config = notify_config(make_config, tmp_path, inbox,
                           NOTIFY={"rules_refresh_seconds": 600})
    reads, handled = [], []
    real_read, real_on_event = NotifyStore.stored_rules, Notifier.on_event

    def slow_read(store):
        reads.append(1)
        eventlet.sleep(0.3)  # long enough for every delivered event to ask meanwhile
        return real_read(store)

    def counted(notifier, store, ev):
        try:
            return real_on_event(notifier, store, ev)
        finally:
            handled.append(ev["id"])

    with mock.patch.object(NotifyStore, "stored_rules", slow_read), \
            mock.patch.object(Notifier, "on_event", counted):
        container = start_notify(container_factory, config)
        reads.clear()  # whatever start-up read; the rules are stale until the first event
        notifier_of(container)._rules = (float("-inf"), notifier_of(container)._rules[1])
        publish(rabbit_config["AMQP_URI"], *(historical_assignment(n) for n in range(EVENTS)))
        assert wait_for(lambda: len(handled) == EVENTS)

    assert len(reads) == 1


def test_a_fresh_read_is_not_served_from_the_cache(
        container_factory, make_config, rabbit_config, tmp_path, inbox, mongo_db):
    config = notify_config(make_config, tmp_path, inbox,
                           NOTIFY={"rules_refresh_seconds": 600})
    notifier = notifier_of(start_notify(container_factory, config))
    store = NotifyStore(mongo_db, config)
    before = {rule.name: rule.enabled for rule in notifier.rules(store)}
    assert before["lead_assigned"] is True
    store.put_rule("lead_assigned", {"event": "lead.assigned", "template": "lead_assigned",
                                     "recipients": ["owner"], "channels": ["email"],
                                     "enabled": False}, "user:admin", utcnow())

    cached = {rule.name: rule.enabled for rule in notifier.rules(store)}
    fresh = {rule.name: rule.enabled for rule in notifier.rules(store, fresh=True)}
    assert cached["lead_assigned"] is True and fresh["lead_assigned"] is False


def test_a_failed_read_caches_nothing_and_its_event_is_retried(
        container_factory, make_config, rabbit_config, tmp_path, inbox):
    config = notify_config(make_config, tmp_path, inbox,
                           NOTIFY={"rules_refresh_seconds": 600})
    reads, handled = [], set()
    real_read, real_on_event = NotifyStore.stored_rules, Notifier.on_event

    def failing_once(store):
        reads.append(1)
        eventlet.sleep(0.3)
        if len(reads) == 1:
            raise AutoReconnect("database down")
        return real_read(store)

    def counted(notifier, store, ev):
        result = real_on_event(notifier, store, ev)
        handled.add(ev["id"])
        return result

    with mock.patch.object(NotifyStore, "stored_rules", failing_once), \
            mock.patch.object(Notifier, "on_event", counted):
        container = start_notify(container_factory, config)
        reads.clear()
        notifier_of(container)._rules = (float("-inf"), notifier_of(container)._rules[1])
        events = [historical_assignment(100 + n) for n in range(EVENTS)]
        publish(rabbit_config["AMQP_URI"], *events)
        # the event whose read failed comes back through its retry queue
        assert wait_for(lambda: handled == {e["id"] for e in events})

    assert len(reads) == 2  # the failed read, then one for every worker that waited
