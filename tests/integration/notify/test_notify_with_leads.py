"""The leads service and notify together: a captured lead that the territory rules give to
a rep reaches that rep's inbox, in Chinese, from the event leads really publishes; the
leads of an admin's historical import do not (their assignments were made back then)."""
import yaml

from leads.service import LeadsService
from tests.integration.notify.notify_support import notify_config, start_notify
from tests.support.tokens import token
from tests.support.wait import wait_for

REP = {"name": "王芳", "email": "wang.fang@example.cn", "locale": "zh-CN",
       "time_zone": "Asia/Shanghai", "team": "greater_china", "roles": ["rep"]}


def start(container_factory, make_config, tmp_path, inbox):
    leads_config = make_config("leads")  # territory greater_china -> rep-gc-1
    container_factory(LeadsService, leads_config).start()
    config = notify_config(make_config, tmp_path, inbox)
    people = tmp_path / "reps.yml"
    people.write_text(yaml.safe_dump({"people": {"rep-gc-1": REP}}, allow_unicode=True),
                      encoding="utf-8")
    config["PEOPLE"] = {**config["PEOPLE"], "file": str(people)}
    start_notify(container_factory, config)
    return leads_config


def test_a_lead_assigned_by_leads_is_mailed_to_its_rep(
        container_factory, make_config, api, tmp_path, inbox):
    leads_config = start(container_factory, make_config, tmp_path, inbox)

    created = api(leads_config).post("/api/v1/leads", json={
        "name": "张伟", "company": "上海贸易有限公司", "email": "zhang.wei@example.cn",
        "country": "CN"})
    assert created.status_code == 201, created.text
    lead_id = created.json()["id"]

    [mail] = wait_for(lambda: inbox.to("wang.fang@example.cn"), timeout=20)
    assert mail["Subject"] == "新线索已分配给您"
    assert f"线索 {lead_id} 已分配给您" in inbox.message(mail["ID"])["Text"]
    # no personal data of the lead travelled in the event, nor into the message
    assert "张伟" not in inbox.message(mail["ID"])["Text"]


HISTORY = ("name,email,phone,country,source,created_at,status,contacted_at,qualified_at,"
           "converted_at,disqualified_at,reason,amount,currency,owner\n"
           "李娜,li.na@example.cn,,CN,event,2025-11-03T09:00:00+08:00,qualified,"
           "2025-11-03T10:30:00+08:00,2025-11-10T10:00:00+08:00,,,,,,rep-gc-1\n")


def test_a_historical_import_mails_no_rep_while_a_lead_of_today_still_does(
        container_factory, make_config, api, tmp_path, inbox, mongo_db):
    leads_config = start(container_factory, make_config, tmp_path, inbox)
    client = api(leads_config)
    imported = client.post("/api/v1/leads/import", data=HISTORY.encode(), params={
        "history": "true"}, headers={"Content-Type": "text/csv", "Idempotency-Key": "h-1",
                                     "Authorization": f"Bearer {token('admin')}"})
    assert imported.status_code == 200 and imported.json()["created"] == 1, imported.text
    # its lead.assigned went out (the relay emptied the outbox) before today's lead
    wait_for(lambda: not mongo_db.leads.find_one({"email": "li.na@example.cn"}).get("outbox"),
             timeout=20)
    created = client.post("/api/v1/leads", json={
        "name": "张伟", "company": "上海贸易有限公司", "email": "zhang.wei@example.cn",
        "country": "CN"})
    assert created.status_code == 201, created.text

    [mail] = wait_for(lambda: inbox.to("wang.fang@example.cn"), timeout=20)
    assert created.json()["id"] in inbox.message(mail["ID"])["Text"]
    historical = mongo_db.leads.find_one({"email": "li.na@example.cn"})
    assert historical["owner_id"] == "rep-gc-1"  # assigned, only not announced
