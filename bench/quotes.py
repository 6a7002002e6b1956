"""Quotes: totals computed per second for a 50-line quote, and quote creations per second
over HTTP with 10 concurrent clients.

Totals: `quotes.pricing.price` on a 50-line CNY quote (line discounts, a quote discount
shared over the lines, tax per line), in this process. Its raw limit, in the same run, is
the arithmetic floor of the same quote: one Decimal multiply and one half-up quantize per
line and per tax, summed, without the checks, the discount sharing or the dict building.

Creations: POST /api/v1/quotes (a 5-line quote from the price book, for a deal the service
learnt of from deal.created) against the service as a process; each creation reads the
deal view and the products by `_id` and inserts one document carrying quote.created. Its
raw limit is `http_healthz_per_s` (raw.http).
"""
import datetime as dt
import time
from decimal import ROUND_HALF_UP, Decimal

from bench.harness import KEYS, bearer
from kit.amqp import ConfirmingPublisher
from kit.devtokens import ensure_keypair, mint
from kit.events import new_event
from quotes.pricing import price

LINES = 50
CLIENTS = 10
DURATION = 6.0
SECONDS = 3.0

RATIOS = {"quote_creations_per_s": "http_healthz_per_s"}


def fifty_lines():
    return [{"quantity": Decimal(n % 7 + 1), "unit_price": Decimal(f"{n * 137}.{n % 100:02d}"),
             "tax_rate": Decimal(13 if n % 3 else 6),
             **({"discount_percent": Decimal("5")} if n % 4 == 0 else {})}
            for n in range(1, LINES + 1)]


def _per_second(fn, seconds=SECONDS):
    fn()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        fn()
        count += 1
    return count / (time.perf_counter() - started)


def _floor(lines):
    cent = Decimal("0.01")
    total = Decimal(0)
    for line in lines:
        net = (line["quantity"] * line["unit_price"]).quantize(cent, rounding=ROUND_HALF_UP)
        total += net + (net * line["tax_rate"] / 100).quantize(cent, rounding=ROUND_HALF_UP)
    return total


def totals():
    lines = fifty_lines()
    return {
        "quote_totals_per_s_50_lines": round(_per_second(
            lambda: price(lines, "CNY", discount_amount=Decimal("1000.00"))), 1),
        "decimal_floor_quotes_per_s": round(_per_second(lambda: _floor(lines)), 1),
    }


def creations(ctx):
    import requests

    private, _ = ensure_keypair(KEYS)
    token = mint(private.read_bytes(), "ann", ["rep"], "dach")
    base = ctx.start_service("quotes", LINK_KEYS="bench=" + "b" * 40)
    resp = requests.post(f"{base}/api/v1/products", timeout=10, json={
        "code": "BENCH-1", "name_zh": "基准产品", "name_en": "Bench product", "unit": "套",
        "prices": {"CNY": "99.90"}, "tax_rate": 13},
        headers=bearer())
    resp.raise_for_status()
    deal_id = "bench-deal"
    publisher = ConfirmingPublisher(ctx.amqp_uri)
    try:
        event = new_event("deal.created", deal_id, {
            "deal_id": deal_id, "pipeline_id": "default", "stage": "discovery",
            "name": "上海云杉科技有限公司", "owner_id": "ann", "amount": None, "currency": None,
            "probability": 10, "expected_close": None, "lead_id": None, "origin": "direct",
            "created_at": dt.datetime.now(dt.UTC)}, 1)
        publisher.publish_batch([("deals.events", "deal.created", event, {"ce-id": event["id"]})])
    finally:
        publisher.close()
    headers = {"Authorization": f"Bearer {token}"}
    body = {"deal_id": deal_id, "currency": "CNY", "valid_until": "2099-01-01T00:00:00Z",
            "lines": [{"product_code": "BENCH-1", "quantity": str(n)} for n in range(1, 6)]}
    deadline = time.monotonic() + 30
    while requests.post(f"{base}/api/v1/quotes", json=body, headers=headers,
                        timeout=10).status_code != 201:
        if time.monotonic() > deadline:
            raise RuntimeError("the quotes service never learnt of the bench deal")
        time.sleep(0.2)
    load = ctx.http_load("POST", f"{base}/api/v1/quotes", clients=CLIENTS, duration=DURATION,
                         json_fn=lambda i, t: body, headers_fn=lambda i, t: headers, ok=(201,))
    return {"quote_creations_per_s": load["rps"], "quote_creation_p50_ms": load["p50_ms"],
            "quote_creation_p99_ms": load["p99_ms"], "quote_creation_errors": load["errors"]}


def run(ctx):
    figures = totals()
    # the raw limit of pure arithmetic is measured here, in the same run
    figures["quote_totals_per_s_50_lines / decimal_floor_quotes_per_s"] = round(
        figures["quote_totals_per_s_50_lines"] / figures["decimal_floor_quotes_per_s"], 3)
    figures.update(creations(ctx))
    return figures
