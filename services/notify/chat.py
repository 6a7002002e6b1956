"""Team-chat group robots: DingTalk (signed webhook) and WeCom.

DingTalk's signature, as its robot documentation gives it: timestamp in milliseconds,
string to sign "timestamp\\nsecret", HMAC-SHA256 keyed by the secret, base64, then
URL-encoded, appended to the webhook as `&timestamp=...&sign=...`. Both robots answer
HTTP 200 with {"errcode": 0, "errmsg": "ok"}, or an errcode saying what failed.
"""
import base64
import hashlib
import hmac
import time
from urllib.parse import quote_plus

import requests

from notify.failures import Permanent, Transient, from_http_status

# errcodes that pass by themselves: DingTalk's "sending too fast" and WeCom's
# "frequency limit" and "system busy"
TRANSIENT_ERRCODES = {-1, 130101, 45009, 45033}


def dingtalk_sign(secret, timestamp_ms):
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest))


def dingtalk_url(webhook, secret, timestamp_ms=None):
    if not secret:
        return webhook
    timestamp_ms = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    joiner = "&" if "?" in webhook else "?"
    return f"{webhook}{joiner}timestamp={timestamp_ms}&sign={dingtalk_sign(secret, timestamp_ms)}"


def send_dingtalk(team, rendered, timeout):
    body = {"msgtype": "markdown", "markdown": {
        "title": rendered.get("subject") or "Dealflow",
        "text": rendered.get("chat") or rendered.get("text") or ""}}
    _post("DingTalk", dingtalk_url(team["webhook"], team.get("secret")), body, timeout)


def send_wecom(team, rendered, timeout):
    body = {"msgtype": "markdown", "markdown": {
        "content": rendered.get("chat") or rendered.get("text") or ""}}
    _post("WeCom", team["webhook"], body, timeout)


def _post(what, url, body, timeout):
    try:
        resp = requests.post(url, json=body, timeout=timeout)
    except requests.RequestException as exc:
        raise Transient(f"{what}: {type(exc).__name__}") from None
    if not 200 <= resp.status_code < 300:
        raise from_http_status(resp.status_code, what)
    try:
        answer = resp.json()
    except ValueError:
        raise Transient(f"{what} answered something not JSON") from None
    code = answer.get("errcode", 0)
    if code != 0:
        reason = f"{what} errcode {code}: {answer.get('errmsg')}"
        raise Transient(reason) if code in TRANSIENT_ERRCODES else Permanent(reason)
