"""Each channel against a real local server: SMTP into Mailpit (read back through its REST
API), the DingTalk and WeCom robots and Tencent Cloud SMS against receivers that verify
signatures as the providers document them."""
import pytest

from notify import chat, mail, sms
from notify.failures import Permanent, Transient
from tests.conftest import free_port
from tests.support.wait import wait_for

RENDERED = {"subject": "新线索已分配给您：L-1", "text": "王芳，您好：\n线索 L-1 已分配给您。",
            "html": "<p>王芳，您好：</p><p>线索 <b>L-1</b> 已分配给您。</p>",
            "chat": "### 跟进提醒\n线索 L-1", "sms": {"template_id": "1000001",
                                                     "params": ["L-1"]}}


def smtp(mailpit, **kw):
    return {"host": "127.0.0.1", "port": mailpit.smtp_port, "security": "none",
            "username": None, "password": None, "timeout_seconds": 5,
            "sender": "Dealflow 通知 <noreply@dealflow.example.com>", **kw}


def test_email_with_chinese_subject_text_and_html(inbox):
    msg = mail.build_message(smtp(inbox), "k1", "王芳 <wang.fang@example.cn>", RENDERED,
                             "http://127.0.0.1:8006/u/t")
    mail.send_email(smtp(inbox, username="notify", password="pw"), msg)
    [summary] = wait_for(lambda: inbox.to("wang.fang@example.cn"))
    assert summary["Subject"] == "新线索已分配给您：L-1"
    assert summary["To"][0]["Name"] == "王芳"
    full = inbox.message(summary["ID"])
    assert full["Text"].replace("\r\n", "\n").strip() == RENDERED["text"]
    assert "<b>L-1</b>" in full["HTML"]
    assert full["From"]["Name"] == "Dealflow 通知"
    assert full["ListUnsubscribe"]["Links"] == ["http://127.0.0.1:8006/u/t"]


def test_a_refused_mailbox_is_permanent(inbox):
    msg = mail.build_message(smtp(inbox), "k2", "nobody@unknown.invalid", RENDERED)
    with pytest.raises(Permanent, match="SMTP 550"):
        mail.send_email(smtp(inbox), msg)


def test_no_smtp_server_is_transient():
    settings = {"host": "127.0.0.1", "port": free_port(), "security": "none",
                "sender": "a@example.com", "timeout_seconds": 2}
    msg = mail.build_message(settings, "k3", "a@example.com", RENDERED)
    with pytest.raises(Transient, match="ConnectionRefused"):
        mail.send_email(settings, msg)


def test_starttls_asked_of_a_server_without_it_is_transient(inbox):
    msg = mail.build_message(smtp(inbox), "k4", "a@example.com", RENDERED)
    with pytest.raises(Transient):
        mail.send_email(smtp(inbox, security="starttls"), msg)


def test_dingtalk_signed_message(dingtalk):
    chat.send_dingtalk({"webhook": dingtalk.webhook, "secret": dingtalk.secret}, RENDERED, 5)
    assert dingtalk.received == [{"msgtype": "markdown", "markdown": {
        "title": RENDERED["subject"], "text": RENDERED["chat"]}}]


def test_dingtalk_wrong_secret_is_permanent(dingtalk):
    with pytest.raises(Permanent, match="310000"):
        chat.send_dingtalk({"webhook": dingtalk.webhook, "secret": "wrong"}, RENDERED, 5)
    assert dingtalk.received == [] and len(dingtalk.rejected) == 1


def test_dingtalk_5xx_is_transient(dingtalk):
    dingtalk.fail(1, 502)
    with pytest.raises(Transient, match="502"):
        chat.send_dingtalk({"webhook": dingtalk.webhook, "secret": dingtalk.secret},
                           RENDERED, 5)


def test_wecom_message(wecom):
    chat.send_wecom({"webhook": wecom.webhook}, RENDERED, 5)
    assert wecom.received == [{"msgtype": "markdown", "markdown": {
        "content": RENDERED["chat"]}}]
    with pytest.raises(Permanent, match="93000"):
        chat.send_wecom({"webhook": wecom.webhook.replace("key-1", "key-2")}, RENDERED, 5)


def sms_settings(gateway, **kw):
    return {"endpoint": gateway.url + "/", "region": "ap-guangzhou",
            "secret_id": gateway.secret_id, "secret_key": gateway.secret_key,
            "sdk_app_id": "1400000001", "sign_name": "Dealflow", "timeout_seconds": 5, **kw}


def test_sms_signed_as_tencent_cloud_documents(sms_gateway):
    sms.send_sms(sms_settings(sms_gateway), "+8613800000001", RENDERED["sms"])
    assert sms_gateway.received == [{
        "action": "SendSms", "PhoneNumberSet": ["+8613800000001"],
        "SmsSdkAppId": "1400000001", "SignName": "Dealflow", "TemplateId": "1000001",
        "TemplateParamSet": ["L-1"]}]


def test_sms_wrong_key_is_permanent(sms_gateway):
    with pytest.raises(Permanent, match="SignatureFailure"):
        sms.send_sms(sms_settings(sms_gateway, secret_key="nope"), "+8613800000001",
                     RENDERED["sms"])
    assert sms_gateway.received == []


def test_sms_gateway_5xx_is_transient(sms_gateway):
    sms_gateway.fail(1, 500)
    with pytest.raises(Transient):
        sms.send_sms(sms_settings(sms_gateway), "+8613800000001", RENDERED["sms"])
