"""The leads service and notify together: a captured lead that the territory rules give to
a rep reaches that rep's inbox, in Chinese, from the event leads really publishes."""
import yaml

from leads.service import LeadsService
from tests.integration.notify.notify_support import notify_config, start_notify
from tests.support.wait import wait_for

REP = {"name": "王芳", "email": "wang.fang@example.cn", "locale": "zh-CN",
       "time_zone": "Asia/Shanghai", "team": "greater_china", "roles": ["rep"]}


def test_a_lead_assigned_by_leads_is_mailed_to_its_rep(
        container_factory, make_config, api, tmp_path, inbox):
    leads_config = make_config("leads")  # territory greater_china -> rep-gc-1
    container_factory(LeadsService, leads_config).start()
    config = notify_config(make_config, tmp_path, inbox)
    people = tmp_path / "reps.yml"
    people.write_text(yaml.safe_dump({"people": {"rep-gc-1": REP}}, allow_unicode=True),
                      encoding="utf-8")
    config["PEOPLE"] = {**config["PEOPLE"], "file": str(people)}
    start_notify(container_factory, config)

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
