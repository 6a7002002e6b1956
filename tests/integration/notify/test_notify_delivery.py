"""Notify end to end in-process: events on the real broker, notifications in the real
database, mail into the private Mailpit (read back through its REST API), DingTalk to a
local robot that checks the signature."""
import datetime as dt
import re
from decimal import Decimal

import requests

from tests.integration.notify.notify_support import (
    event,
    followup_due,
    lead_assigned,
    notifier_of,
    notify_config,
    publish,
    start_notify,
    wait_status,
)
from tests.support.amqp import Subscriber
from tests.support.receivers import OwningService
from tests.support.wait import wait_for


def key(event, rule, recipient, channel="email"):
    return f"{event['id']}|{rule}|{recipient}|{channel}"


def test_lead_assigned_emails_the_owner_with_a_chinese_subject(
        container_factory, make_config, api, rabbit_config, tmp_path, inbox):
    config = notify_config(make_config, tmp_path, inbox)
    sub = Subscriber(rabbit_config["AMQP_URI"], "notify", "notification.*")
    start_notify(container_factory, config)
    http = api(config)
    ev = lead_assigned("L-1")
    publish(rabbit_config["AMQP_URI"], ev)

    [mail] = wait_for(lambda: inbox.to("ann@example.cn"))
    assert mail["Subject"] == "新线索已分配给您"
    assert mail["To"][0]["Name"] == "王芳"
    body = inbox.message(mail["ID"])
    assert "线索 L-1 已分配给您" in body["Text"] and "<b>L-1</b>" in body["HTML"]

    note = wait_status(http, key(ev, "lead_assigned", "person:ann"), "sent")
    assert (note["attempts"], note["channel"], note["event_type"]) == (1, "email",
                                                                      "lead.assigned")
    assert [e["status"] for e in note["log"]] == ["queued", "sent"]
    [sent] = sub.drain(expect=1)
    assert sent["type"] == "notification.sent" and sent["source"] == "/dealflow/notify"
    assert sent["data"]["notification_id"] == note["id"]
    assert sent["data"]["recipient"] == "person:ann" and "ann@" not in str(sent["data"])

    metrics = http.get("/metrics").text
    assert re.search(r'dealflow_notifications_total\{channel="email",outcome="sent",'
                     r'rule="lead_assigned"\} 1\.0', metrics)
    assert 'dealflow_notification_latency_seconds_count{channel="email"} 1.0' in metrics
    # from the event's time (before notify saw it), never zero
    latency = re.search(r'dealflow_notification_latency_seconds_sum\{channel="email"\} (\S+)',
                        metrics)
    assert float(latency.group(1)) > 0
    sub.close()


def test_followup_due_posts_a_signed_dingtalk_message(
        container_factory, make_config, api, rabbit_config, tmp_path, inbox, dingtalk):
    config = notify_config(make_config, tmp_path, inbox, dingtalk)
    start_notify(container_factory, config)
    http = api(config)
    ev = followup_due("L-2")
    publish(rabbit_config["AMQP_URI"], ev)

    assert wait_for(lambda: dingtalk.received)
    [message] = dingtalk.received
    assert message["msgtype"] == "markdown"
    assert message["markdown"]["title"] == "跟进提醒：线索 L-2"
    assert "线索 L-2 的跟进已到期" in message["markdown"]["text"]
    assert dingtalk.rejected == []
    wait_status(http, key(ev, "lead_followup_due", "channel:gc", "dingtalk"), "sent")
    # and the owner by e-mail
    [mail] = wait_for(lambda: inbox.to("ann@example.cn"))
    assert mail["Subject"] == "跟进提醒：线索 L-2"


def test_a_redelivered_event_sends_nothing_twice(
        container_factory, make_config, api, rabbit_config, tmp_path, inbox, mongo_db,
        dingtalk):
    configs = [notify_config(make_config, tmp_path, inbox, dingtalk) for _ in range(2)]
    for config in configs:  # two instances compete for the same queues and due items
        start_notify(container_factory, config)
    events = [followup_due(f"L-{i}") for i in range(5)]
    publish(rabbit_config["AMQP_URI"], *events, *events, *events)

    assert wait_for(lambda: len(inbox.to("ann@example.cn")) >= 5 and len(dingtalk.received)
                    >= 5)
    assert wait_for(lambda: mongo_db.notifications.count_documents({"status": "sent"}) == 10)
    publish(rabbit_config["AMQP_URI"], lead_assigned("L-last"))  # everything before it is in
    assert wait_for(lambda: len(inbox.to("ann@example.cn")) == 6)
    assert mongo_db.notifications.count_documents({}) == 11
    assert len(dingtalk.received) == 5
    assert sorted(m["Subject"] for m in inbox.to("ann@example.cn")) == sorted(
        [f"跟进提醒：线索 L-{i}" for i in range(5)] + ["新线索已分配给您"])


def test_an_smtp_outage_is_ridden_out(
        container_factory, make_config, api, rabbit_config, tmp_path, inbox):
    config = notify_config(make_config, tmp_path, inbox)
    start_notify(container_factory, config)
    http = api(config)
    inbox.stop()
    try:
        ev = lead_assigned("L-3")
        publish(rabbit_config["AMQP_URI"], ev)
        note_key = key(ev, "lead_assigned", "person:ann")

        def retried():
            resp = http.get(f"/api/v1/notifications/{note_key}")
            return resp.ok and resp.json()["attempts"] >= 2 and resp.json()
        note = wait_for(retried)
        assert note["status"] == "queued" and "SMTP" in note["reason"]
    finally:
        inbox.start()
    [mail] = wait_for(lambda: inbox.to("ann@example.cn"))
    assert mail["Subject"] == "新线索已分配给您"
    note = wait_status(http, note_key, "sent")
    assert note["attempts"] >= 3
    assert "retrying" in [e["status"] for e in note["log"]]


def test_a_permanent_failure_is_logged_failed_and_not_retried(
        container_factory, make_config, api, rabbit_config, tmp_path, inbox):
    config = notify_config(make_config, tmp_path, inbox)
    sub = Subscriber(rabbit_config["AMQP_URI"], "notify", "notification.failed")
    start_notify(container_factory, config)
    http = api(config)
    ev = lead_assigned("L-4", owner="bob")  # bob's mailbox is refused (550)
    publish(rabbit_config["AMQP_URI"], ev)
    note = wait_status(http, key(ev, "lead_assigned", "person:bob"), "failed")
    assert note["reason"].startswith("SMTP 550")
    [failed] = sub.drain(expect=1)
    assert failed["data"]["reason"].startswith("SMTP 550")

    # many delivery passes later (a mail sent after it arrived) it was still tried once
    publish(rabbit_config["AMQP_URI"], lead_assigned("L-5"))
    assert wait_for(lambda: inbox.to("ann@example.cn"))
    note = http.get(f"/api/v1/notifications/{note['id']}").json()
    assert (note["status"], note["attempts"], note.get("due_at")) == ("failed", 1, None)
    assert inbox.to("bob@unknown.invalid") == []
    sub.close()


def test_quiet_hours_delay_until_they_end(
        container_factory, make_config, api, rabbit_config, tmp_path, inbox):
    config = notify_config(make_config, tmp_path, inbox)
    notifier = notifier_of(start_notify(container_factory, config))
    http = api(config)
    # 23:30 in Shanghai: lin's quiet hours (22:00-08:00) until 00:00 UTC
    notifier.clock = lambda: dt.datetime(2026, 5, 4, 15, 30, tzinfo=dt.UTC)
    ev = lead_assigned("L-6", owner="lin")
    publish(rabbit_config["AMQP_URI"], ev)
    note = wait_status(http, key(ev, "lead_assigned", "person:lin"), "queued")
    assert dt.datetime.fromisoformat(note["due_at"]) == dt.datetime(2026, 5, 5, tzinfo=dt.UTC)
    assert [e["status"] for e in note["log"]] == ["queued", "delayed"]

    notifier.clock = lambda: dt.datetime(2026, 5, 4, 23, 59, tzinfo=dt.UTC)
    publish(rabbit_config["AMQP_URI"], lead_assigned("L-7", owner="max"))
    assert wait_for(lambda: inbox.to("max@example.com"))  # passes of the timer went by
    assert inbox.to("lin@example.cn") == []

    notifier.clock = lambda: dt.datetime(2026, 5, 5, 0, 1, tzinfo=dt.UTC)
    assert wait_for(lambda: inbox.to("lin@example.cn"))
    wait_status(http, note["id"], "sent")


def test_an_unsubscribe_link_suppresses_what_follows(
        container_factory, make_config, api, rabbit_config, tmp_path, inbox):
    config = notify_config(make_config, tmp_path, inbox)
    start_notify(container_factory, config)
    http = api(config)
    publish(rabbit_config["AMQP_URI"], lead_assigned("L-8"))
    [mail] = wait_for(lambda: inbox.to("ann@example.cn"))
    [link] = inbox.message(mail["ID"])["ListUnsubscribe"]["Links"]
    assert link in inbox.message(mail["ID"])["Text"]

    assert requests.get(link, timeout=5).status_code == 200  # the page: nothing changes yet
    resp = requests.post(link, timeout=5)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"recipient": "person:ann", "channel": "email",
                           "unsubscribed": True}

    ev = lead_assigned("L-9")
    publish(rabbit_config["AMQP_URI"], ev, lead_assigned("L-10", owner="max"))
    assert wait_for(lambda: inbox.to("max@example.com"))
    note = wait_status(http, key(ev, "lead_assigned", "person:ann"), "suppressed")
    assert note["reason"] == "opted_out"
    assert len(inbox.to("ann@example.cn")) == 1
    metrics = http.get("/metrics").text
    assert re.search(r'dealflow_notifications_total\{channel="email",outcome="suppressed",'
                     r'rule="lead_assigned"\} 1\.0', metrics)

    tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    bad = requests.post(tampered, timeout=5)
    assert bad.status_code == 403 and bad.headers["Content-Type"] == \
        "application/problem+json"
    assert bad.json()["kind"] == "tampered"


def test_the_owning_service_gives_the_customer_and_the_link(
        container_factory, make_config, api, rabbit_config, tmp_path, inbox):
    """quote.sent carries no address and no link (DESIGN): notify asks the quotes service
    for both through the configured hook, and a 5xx there is retried, not dropped."""
    quotes = OwningService({
        "/api/v1/quotes/Q-1/customer": {"id": "acct-7", "email": "buyer@example.cn",
                                        "locale": "zh-CN", "name": "李先生"},
        "/api/v1/quotes/Q-1/links/accept": {"url": "https://quotes.example/accept/t0k"},
    }).start()
    try:
        config = notify_config(make_config, tmp_path, inbox, NOTIFY={
            "customers": {"quote.sent": quotes.url + "/api/v1/quotes/{quote_id}/customer"},
            "links": {"quote.sent": {
                "accept": quotes.url + "/api/v1/quotes/{quote_id}/links/accept"}}})
        start_notify(container_factory, config)
        http = api(config)
        quotes.fail(1, 503)  # the first look-up fails: the event goes round again
        ev = event("quote.sent", "Q-1", quote_id="Q-1", deal_id="D-1", version=2,
                   total=Decimal("12000.00"), currency="CNY",
                   valid_until=dt.datetime(2026, 6, 4, tzinfo=dt.UTC))
        publish(rabbit_config["AMQP_URI"], ev)

        [mail] = wait_for(lambda: inbox.to("buyer@example.cn"))
        assert mail["Subject"] == "您的报价单"
        assert "接受报价：https://quotes.example/accept/t0k" in inbox.message(mail["ID"])["Text"]
        note = wait_status(http, key(ev, "quote_sent", "customer:acct-7"), "sent")
        assert note["recipient"] == "customer:acct-7"
    finally:
        quotes.stop()
