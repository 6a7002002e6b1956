"""SMS through Tencent Cloud SMS (API 3.0, action SendSms, version 2021-01-11), signed with
TC3-HMAC-SHA256 exactly as Tencent Cloud's "signature v3" documentation describes:

  CanonicalRequest = Method \\n URI \\n Query \\n CanonicalHeaders \\n SignedHeaders \\n
                     hex(SHA256(payload))
  (headers content-type, host and x-tc-action, names and values lower-cased, each line
  ending in \\n)
  StringToSign = "TC3-HMAC-SHA256" \\n timestamp \\n date/sms/tc3_request \\n
                 hex(SHA256(CanonicalRequest))
  key = HMAC(HMAC(HMAC("TC3" + SecretKey, date), "sms"), "tc3_request")
  Signature = hex(HMAC(key, StringToSign))
  Authorization: TC3-HMAC-SHA256 Credential=SecretId/date/sms/tc3_request,
                 SignedHeaders=content-type;host;x-tc-action, Signature=...

with `date` the UTC date of the timestamp. SMS on Tencent Cloud are pre-approved templates
with positional parameters: our template gives the template id and its parameters.
"""
import datetime as dt
import hashlib
import hmac
import json
import time
from urllib.parse import urlsplit

import requests

from notify.failures import Permanent, Transient, from_http_status

SERVICE = "sms"
ACTION = "SendSms"
VERSION = "2021-01-11"
ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"
SIGNED_HEADERS = "content-type;host;x-tc-action"


def _hmac(key, msg):
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def tc3_signature(secret_key, host, action, payload, timestamp, service=SERVICE):
    date = dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d")
    canonical_headers = (f"content-type:{CONTENT_TYPE}\nhost:{host}\n"
                         f"x-tc-action:{action.lower()}\n")
    canonical_request = "\n".join([
        "POST", "/", "", canonical_headers, SIGNED_HEADERS,
        hashlib.sha256(payload.encode("utf-8")).hexdigest()])
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join([
        ALGORITHM, str(timestamp), scope,
        hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()])
    key = _hmac(_hmac(_hmac(("TC3" + secret_key).encode("utf-8"), date), service),
                "tc3_request")
    return scope, hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def signed_request(settings, phone, sms, timestamp=None):
    """(url, headers, body) of a SendSms call."""
    timestamp = int(timestamp if timestamp is not None else time.time())
    payload = json.dumps({
        "PhoneNumberSet": [phone], "SmsSdkAppId": str(settings["sdk_app_id"]),
        "SignName": settings["sign_name"], "TemplateId": sms["template_id"],
        "TemplateParamSet": sms["params"]}, ensure_ascii=False, separators=(",", ":"))
    host = urlsplit(settings["endpoint"]).netloc
    scope, signature = tc3_signature(settings["secret_key"], host, ACTION, payload, timestamp)
    headers = {
        "Authorization": (f"{ALGORITHM} Credential={settings['secret_id']}/{scope}, "
                          f"SignedHeaders={SIGNED_HEADERS}, Signature={signature}"),
        "Content-Type": CONTENT_TYPE, "Host": host, "X-TC-Action": ACTION,
        "X-TC-Timestamp": str(timestamp), "X-TC-Version": VERSION,
        "X-TC-Region": settings["region"],
    }
    return settings["endpoint"], headers, payload.encode("utf-8")


def send_sms(settings, phone, sms):
    url, headers, body = signed_request(settings, phone, sms)
    try:
        resp = requests.post(url, data=body, headers=headers,
                             timeout=float(settings.get("timeout_seconds") or 10))
    except requests.RequestException as exc:
        raise Transient(f"SMS gateway: {type(exc).__name__}") from None
    if not 200 <= resp.status_code < 300:
        raise from_http_status(resp.status_code, "SMS gateway")
    try:
        answer = resp.json()["Response"]
    except (ValueError, KeyError, TypeError):
        raise Transient("SMS gateway answered something unexpected") from None
    error = answer.get("Error")
    if error:
        raise _by_code(error.get("Code", ""), error.get("Message"))
    status = (answer.get("SendStatusSet") or [{}])[0]
    if status.get("Code") != "Ok":
        raise _by_code(status.get("Code", ""), status.get("Message"))


def _by_code(code, message):
    reason = f"SMS {code}: {message}"
    # Tencent's transient classes: internal errors, request and frequency limits
    if code.startswith(("InternalError", "RequestLimitExceeded", "LimitExceeded")):
        return Transient(reason)
    return Permanent(reason)
