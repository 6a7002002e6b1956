"""Public lead capture (web-to-lead): website forms post leads without a token.

A form is configured (CAPTURE.forms) with a public key, which sits in the website's HTML
and so is no secret, and the origins allowed to post from a browser. What keeps the route
safe is what it may do, not who calls it:
- it only creates leads. A submission whose e-mail or phone is known changes none of the
  known lead's fields: an anonymous caller could otherwise overwrite a customer's data or
  probe which addresses are customers. The repeat is recorded as a `form` activity on the
  known lead (its rep sees the renewed interest), and the answer is the same 202 in every
  case: it never says whether the address was known, nor the lead's id;
- a request from an origin the form does not list is refused (403); a preflight (OPTIONS)
  is answered for listed origins only, and only they get Access-Control-Allow-Origin;
- per-address and per-form rate limits (fixed windows counted in MongoDB, so they hold
  across instances) answer 429 with Retry-After; every attempt counts, bots included;
- a filled honeypot field (hidden from people, filled by bots) is answered as a success
  and writes nothing; bodies are small (CAPTURE.max_body_bytes, 413) and fields bounded.
The actor of a captured lead is `customer:form:<form key>`.

The rules are in leads.forms (pure); `submit` and `preflight` here wire them to the store.
"""
import uuid
from urllib.parse import parse_qsl

from marshmallow import ValidationError
from nameko.extensions import DependencyProvider

from kit import customfields as CF
from kit.audit import _networks, client_address
from kit.config import setting
from kit.errors import DomainError, Forbidden, Invalid, TooManyRequests
from kit.http import JSON, json_body, problem_from_exception, read_body
from leads import domain
from leads.forms import (
    bucket,
    check_origin,
    cors_headers,
    form_of,
    forms_from_config,
    is_bot,
    preflight_headers,
    repeat_activity,
    retry_after,
)
from leads.schemas import UTM_KEYS, CaptureIn, CaptureReceived

FORM_ENCODED = "application/x-www-form-urlencoded"


class Forms(DependencyProvider):
    """The configured forms, parsed once per container."""

    def setup(self):
        self.forms = forms_from_config(self.container.config.get("CAPTURE"))

    def get_dependency(self, worker_ctx):
        return self.forms


def from_form_encoded(pairs):
    """A flat HTML form as the JSON shape: `utm_<k>` and `custom_<k>` nest."""
    data, utm, custom = {}, {}, {}
    for name, value in pairs:
        if not value.strip():  # an empty field of an HTML form means "not given"
            continue
        if name.startswith("utm_") and name[4:] in UTM_KEYS:
            utm[name[4:]] = value
        elif name.startswith("custom_") and len(name) > 7:
            custom[name[7:]] = value
        else:
            data[name] = value
    if utm:
        data["utm"] = utm
    if custom:
        data["custom"] = custom
    return data


# --- wiring -----------------------------------------------------------------------------------


def address_of(request, config):
    """The client's address, X-Forwarded-For believed only as far as the proxies the
    config trusts wrote it (AUTH.trusted_proxies, as the audit trail reads it)."""
    return client_address(request, _networks(setting(config, "AUTH.trusted_proxies"))) \
        or "unknown"


def preflight(forms, request, form_key):
    origin = None
    try:
        form = form_of(forms, form_key)
        origin = check_origin(form, request.headers.get("Origin"))
        if origin is None:
            raise Forbidden("A preflight needs an Origin.")
    except DomainError as exc:
        return problem_from_exception(exc, request)
    return 204, preflight_headers(origin), None


def submit(store, rules, forms, config, request, form_key, now):
    """The whole answer to a form's POST, problems included (they carry the CORS headers
    too, so the website's script can read them)."""
    origin = None
    try:
        form = form_of(forms, form_key)
        origin = check_origin(form, request.headers.get("Origin"))
        _limit(store, form, address_of(request, config), now)
        data = _body(request, form)
        if not is_bot(data, form):
            _create(store, rules, form, _typed(store, CaptureIn().load(data)), now)
    except (DomainError, ValidationError) as exc:
        response = problem_from_exception(exc, request)
        response.headers.extend(cors_headers(origin))
        return response
    return 202, cors_headers(origin), CaptureReceived().dump({"received": True})


def _limit(store, form, address, now):
    for scope, key, window in (("address", f"{form.key}:{address}", form.per_address),
                               ("form", form.key, form.per_form)):
        bucket_id, end = bucket(scope, key, window, now)
        if store.count_hit(bucket_id, end) > window.limit:
            seconds = retry_after(end, now)
            raise TooManyRequests(f"Too many submissions; retry in {seconds} s.",
                                  retry_after=seconds, headers={"Retry-After": str(seconds)})


def _body(request, form):
    if request.mimetype == FORM_ENCODED:
        raw = read_body(request, form.max_body_bytes)
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True,
                              strict_parsing=False, max_num_fields=100)
        except (UnicodeDecodeError, ValueError) as exc:
            raise Invalid(f"The form body is not valid UTF-8 form data: {exc}.") from None
        return from_form_encoded(pairs)
    if request.mimetype not in (JSON, ""):
        raise Invalid(f"Send {JSON} or {FORM_ENCODED}.")
    read_body(request, form.max_body_bytes)  # the form's limit, below the service's
    data = json_body(request)
    if not isinstance(data, dict):
        raise ValidationError({"_schema": ["The body must be a JSON object."]})
    return data


def _typed(store, data):
    """The custom fields checked against the leads' definitions: a bad one is a 400 that
    names it and writes nothing. Form fields are text (`custom_<key or label>`), so
    values are read as text would give them (kit.customfields.check_text_values)."""
    if data.get("custom"):
        data["custom"], errors = CF.check_text_values(store.field_defs("lead"),
                                                      data["custom"])
        if errors:
            raise Invalid("Custom fields do not match their definitions.",
                          errors={"custom": errors})
    return data


def _create(store, rules, form, data, now):
    lead = domain.new_lead({**data, "source": form.source}, str(uuid.uuid4()), now, rules,
                           form.actor)
    try:
        store.insert_new(lead, rules.assignment, form.actor)
    except domain.DuplicateLead as duplicate:
        store.change(duplicate.existing_id,
                     lambda known: repeat_activity(known, data, form, now))
