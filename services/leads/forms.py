"""Rules of public web forms (web-to-lead), pure: which forms exist, which origins may
post, the rate-limit windows, the honeypot, and what a repeat submission records. The
reasons are in leads.capture, which wires them to HTTP and the store."""
import datetime as dt
import hashlib
import math
import re
import uuid
from dataclasses import dataclass

from kit.changes import Change
from kit.errors import Forbidden, NotFound
from leads import domain

FORM_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
FORM_ENCODED = "application/x-www-form-urlencoded"
PREFLIGHT_MAX_AGE = 600


@dataclass(frozen=True)
class Window:
    limit: int
    seconds: int


@dataclass(frozen=True)
class Form:
    key: str
    origins: frozenset
    source: str
    honeypot: str
    allow_no_origin: bool
    per_address: Window
    per_form: Window
    max_body_bytes: int

    @property
    def actor(self):
        return f"customer:form:{self.key}"


def _window(value, default):
    value = value or default
    window = Window(int(value["limit"]), int(value["window_seconds"]))
    if window.limit < 1 or window.seconds < 1:
        raise ValueError("A capture rate limit needs limit >= 1 and window_seconds >= 1.")
    return window


def normalise_origin(origin):
    return (origin or "").strip().rstrip("/").lower() or None


def forms_from_config(capture):
    """{public key: Form} from the config's CAPTURE section; a malformed form stops
    start-up."""
    capture = capture or {}
    defaults = {
        "source": capture.get("source", "web_form"),
        "honeypot": capture.get("honeypot_field", "website"),
        "max_body_bytes": int(capture.get("max_body_bytes", 16384)),
        "per_address": capture.get("per_address") or {"limit": 10, "window_seconds": 600},
        "per_form": capture.get("per_form") or {"limit": 300, "window_seconds": 60},
    }
    forms = {}
    for entry in capture.get("forms") or ():
        key = str(entry.get("key", ""))
        if not FORM_KEY.match(key):
            raise ValueError(f"Capture form key {key!r} must match {FORM_KEY.pattern}.")
        origins = frozenset(filter(None, map(normalise_origin, entry.get("origins") or ())))
        forms[key] = Form(
            key=key, origins=origins,
            source=entry.get("source", defaults["source"]),
            honeypot=entry.get("honeypot_field", defaults["honeypot"]),
            allow_no_origin=bool(entry.get("allow_no_origin", False)),
            per_address=_window(entry.get("per_address"), defaults["per_address"]),
            per_form=_window(entry.get("per_form"), defaults["per_form"]),
            max_body_bytes=int(entry.get("max_body_bytes", defaults["max_body_bytes"])))
    return forms


def form_of(forms, key):
    form = forms.get(key)
    if form is None:
        raise NotFound("No such form.")
    return form


def check_origin(form, origin):
    """A browser always sends Origin on a cross-site POST; a request without one is a
    server posting, allowed only where the form says so."""
    origin = normalise_origin(origin)
    if origin is None:
        if not form.allow_no_origin:
            raise Forbidden("This form accepts posts from its website only (Origin).")
        return None
    if origin not in form.origins:
        raise Forbidden(f"Origin {origin} may not post to this form.")
    return origin


def cors_headers(origin):
    if origin is None:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def preflight_headers(origin):
    return {**cors_headers(origin), "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE)}


def bucket(scope, key, window, now):
    """(bucket id, its end) of the fixed window holding `now`. The id starts with the
    window's end in zero-padded seconds, so expired buckets are one `_id` range. An
    address is kept only as a hash: the counters need no one's IP address."""
    start = int(now.timestamp()) // window.seconds * window.seconds
    end = start + window.seconds
    digest = hashlib.sha256(f"{scope}:{key}".encode()).hexdigest()[:32]
    return f"{end:012d}:{window.seconds}:{digest}", dt.datetime.fromtimestamp(end, dt.UTC)


def retry_after(end, now):
    return max(1, math.ceil((end - now).total_seconds()))


def is_bot(data, form):
    """A honeypot field that holds anything but blanks."""
    value = data.pop(form.honeypot, None) if isinstance(data, dict) else None
    return bool(str(value).strip()) if value is not None else False



def repeat_activity(lead, data, form, now):
    """A known e-mail or phone submitted the form again: an activity for the rep, the
    lead's fields untouched (see the module's docstring). What came in is in the summary,
    which erasure blanks with the other activity bodies."""
    sent = ", ".join(f"{k}: {data[k]}" for k in ("name", "company", "email", "phone")
                     if data.get(k))
    entry = {"id": str(uuid.uuid4()), "type": "form", "at": domain.to_millis(now),
             "actor": form.actor, "outcome": "repeat",
             "summary": f"Form {form.key} submitted again ({sent})",
             "duration_minutes": None, "recorded_at": domain.to_millis(now)}
    return domain.log(Change(actor=form.actor), lead, entry)
