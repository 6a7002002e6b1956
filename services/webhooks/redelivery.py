"""Redelivery of a time range, served from the streams: every producer's stream is read
from `since` (webhooks.streamreader), and each event of the range that the subscription
takes is queued again (or anew: a subscription made later, or off at the time)."""
import datetime as dt

from kit.config import setting
from webhooks import deliveries
from webhooks.intake import streams_of
from webhooks.streamreader import StreamMissing, read_range


def redeliver(store, config, sub, since, until, now):
    """(events of the range the subscription takes, deliveries queued)."""
    events = queued = 0
    for stream in streams_of(config):
        try:
            found = read_range(
                config["AMQP_URI"], stream, since, until,
                margin=dt.timedelta(seconds=float(setting(
                    config, "WEBHOOKS.redeliver_margin_seconds", 60))),
                idle=float(setting(config, "WEBHOOKS.redeliver_idle_seconds", 1)),
                prefetch=int(setting(config, "WEBHOOKS.prefetch", 500)))
        except StreamMissing:
            continue
        for body, event in found:
            if event["type"] not in sub["event_types"]:
                continue
            events += 1
            queued += store.queue_again(deliveries.new_delivery(sub, event, body, now), now)
    return events, queued
