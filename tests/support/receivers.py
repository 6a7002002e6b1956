"""Local stand-ins for the chat and SMS gateways: real HTTP servers on 127.0.0.1 that check
each request's signature the way the provider documents it, answer as the provider
does, and keep what they accepted. `fail(n, status)` makes the next n requests fail.

The checks are written from the providers' documents, apart from the service's code:
- DingTalk robot: `timestamp` (ms, within an hour of now) and `sign` =
  urlencode(base64(HMAC-SHA256(key=secret, msg=timestamp + "\\n" + secret)));
- WeCom robot: the webhook's `key`;
- Tencent Cloud API 3.0 (TC3-HMAC-SHA256): the Authorization header recomputed from the
  request's own headers and body.
"""
import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.conftest import free_port


class Receiver:
    def __init__(self):
        self.port = free_port()
        self.received = []
        self.rejected = []
        self._failures = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                url = urlsplit(self.path)
                status, answer = receiver._answer(url.path, parse_qs(url.query),
                                                  self.headers, body)
                raw = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                status, answer = receiver._answer_get(urlsplit(self.path).path, self.headers)
                raw = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def fail(self, times, status=503):
        self._failures.extend([status] * times)

    def _answer_get(self, path, headers):
        if self._failures:
            return self._failures.pop(0), {"error": "induced failure"}
        self.received.append((path, headers.get("Authorization")))
        return self.get(path)

    def get(self, path):
        return 404, {"title": "Not found"}

    def _answer(self, path, query, headers, body):
        if self._failures:
            return self._failures.pop(0), {"error": "induced failure"}
        return self.handle(path, query, headers, body)


class DingTalkRobot(Receiver):
    def __init__(self, access_token, secret):
        super().__init__()
        self.access_token = access_token
        self.secret = secret

    @property
    def webhook(self):
        return f"{self.url}/robot/send?access_token={self.access_token}"

    def handle(self, path, query, headers, body):
        if query.get("access_token") != [self.access_token]:
            return 200, {"errcode": 300001, "errmsg": "token is not exist"}
        try:
            timestamp, sign = query["timestamp"][0], query["sign"][0]
        except KeyError:
            self.rejected.append(body)
            return 200, {"errcode": 310000, "errmsg": "sign not match"}
        expected = base64.b64encode(hmac.new(
            self.secret.encode("utf-8"), f"{timestamp}\n{self.secret}".encode(),
            hashlib.sha256).digest()).decode()
        fresh = abs(time.time() * 1000 - int(timestamp)) < 3600 * 1000
        if not (fresh and hmac.compare_digest(sign, expected)):
            self.rejected.append(body)
            return 200, {"errcode": 310000, "errmsg": "sign not match"}
        self.received.append(json.loads(body))
        return 200, {"errcode": 0, "errmsg": "ok"}


class WeComRobot(Receiver):
    def __init__(self, key):
        super().__init__()
        self.key = key

    @property
    def webhook(self):
        return f"{self.url}/cgi-bin/webhook/send?key={self.key}"

    def handle(self, path, query, headers, body):
        if query.get("key") != [self.key]:
            return 200, {"errcode": 93000, "errmsg": "invalid webhook url"}
        self.received.append(json.loads(body))
        return 200, {"errcode": 0, "errmsg": "ok"}


class OwningService(Receiver):
    """A stand-in for a service that owns what an event names (quotes): it answers the
    look-ups notify makes for a customer's contact and a signed link."""

    def __init__(self, answers):
        super().__init__()
        self.answers = dict(answers)

    def get(self, path):
        if path in self.answers:
            return 200, self.answers[path]
        return 404, {"title": "Not found"}


AUTH = re.compile(r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/"
                  r"(?P<service>[a-z]+)/tc3_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
                  r"Signature=(?P<sig>[0-9a-f]{64})$")


class TencentSms(Receiver):
    def __init__(self, secret_id, secret_key):
        super().__init__()
        self.secret_id = secret_id
        self.secret_key = secret_key

    def handle(self, path, query, headers, body):
        match = AUTH.match(headers.get("Authorization") or "")
        if not match or match["id"] != self.secret_id:
            return 200, self._error("AuthFailure.SecretIdNotFound", "unknown SecretId")
        timestamp = int(headers["X-TC-Timestamp"])
        date = dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d")
        signed = match["signed"].split(";")
        canonical_headers = "".join(
            f"{name}:{headers[name].strip().lower()}\n" for name in signed)
        canonical_request = "\n".join([
            "POST", path or "/", "", canonical_headers, match["signed"],
            hashlib.sha256(body).hexdigest()])
        scope = f"{date}/{match['service']}/tc3_request"
        string_to_sign = "\n".join([
            "TC3-HMAC-SHA256", str(timestamp), scope,
            hashlib.sha256(canonical_request.encode()).hexdigest()])

        def sign(key, msg):
            return hmac.new(key, msg.encode(), hashlib.sha256).digest()

        key = sign(sign(sign(f"TC3{self.secret_key}".encode(), date), match["service"]),
                   "tc3_request")
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if (match["date"] != date or match["service"] != "sms"
                or "content-type" not in signed or "host" not in signed
                or abs(time.time() - timestamp) > 300
                or not hmac.compare_digest(expected, match["sig"])):
            self.rejected.append(body)
            return 200, self._error("AuthFailure.SignatureFailure", "signature mismatch")
        request = json.loads(body)
        self.received.append({"action": headers["X-TC-Action"], **request})
        return 200, {"Response": {"SendStatusSet": [
            {"SerialNo": "1", "PhoneNumber": request["PhoneNumberSet"][0], "Fee": 1,
             "Code": "Ok", "Message": "send success"}], "RequestId": "r1"}}

    @staticmethod
    def _error(code, message):
        return {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": "r1"}}


class WebhookReceiver(Receiver):
    """An integrator's webhook endpoint: verifies each delivery with the Standard Webhooks
    library (`standardwebhooks`, as a receiver would), keeps every verified request in
    `wire` and each webhook-id's first one in `received` (the spec's advice: drop repeats
    by webhook-id). `down()` stops listening (connections are refused) until `up()`;
    `answer(status)` makes it answer that from then on, `refuse = predicate` answers 503 to
    the events it holds for."""

    def __init__(self, secret=None, path="/hooks"):
        super().__init__()
        self.secret = secret
        self.path = path
        self.wire = []
        self.raw = {}
        self.seen = set()
        self.status = 200
        self.refuse = None  # a predicate on the event: answer 503 to those it holds for

    @property
    def hook_url(self):
        return self.url + self.path

    def handle(self, path, query, headers, body):
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        try:
            event = Webhook(self.secret).verify(body, dict(headers.items()))
        except WebhookVerificationError as exc:
            self.rejected.append((str(exc), body))
            return 400, {"error": str(exc)}
        webhook_id = headers["webhook-id"]
        if self.refuse is not None and self.refuse(event):
            return 503, {"error": "refused for now"}
        self.raw[webhook_id] = (body, dict(headers.items()))
        self.wire.append((webhook_id, event))
        if webhook_id not in self.seen:
            self.seen.add(webhook_id)
            self.received.append((webhook_id, event))
        return self.status, {}

    def answer(self, status):
        self.status = status

    def down(self):
        self.server.shutdown()
        self.server.server_close()

    def up(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port),
                                          self.server.RequestHandlerClass)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self
