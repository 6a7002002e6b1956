"""kit.streams without a broker: the stream's arguments from config, its place in the
AsyncAPI, and the rule that reading from a time drops what came before it."""
import datetime as dt

import pytest

from kit import asyncapi
from kit.catalog import CATALOG
from kit.events import new_event
from kit.streams import since, stream_arguments, stream_declarer

NOON = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def test_retention_comes_from_config():
    assert stream_arguments({"STREAMS": {"max_age": "7D", "max_length_bytes": "1000",
                                         "max_segment_size_bytes": 500}}) == {
        "x-queue-type": "stream", "x-max-age": "7D", "x-max-length-bytes": 1000,
        "x-stream-max-segment-size-bytes": 500}


def test_retention_defaults_to_ninety_days():
    assert stream_arguments({})["x-max-age"] == "90D"


@pytest.mark.parametrize("enabled, declares", [(True, True), (False, False)])
def test_streams_can_be_turned_off(enabled, declares):
    assert (stream_declarer({"STREAMS": {"enabled": enabled}}) is not None) == declares


def test_every_producer_s_stream_is_documented_with_all_its_events():
    channels = asyncapi.build()["channels"]
    for service, events in CATALOG.items():
        channel = channels[f"{service}.events.stream"]
        assert channel["bindings"]["amqp"]["queue"]["name"] == f"{service}.events.stream"
        refs = [m["$ref"].rsplit("/", 1)[-1] for m in channel["subscribe"]["message"]["oneOf"]]
        assert len(refs) == len(events)


def test_reading_from_a_time_drops_what_was_appended_before_it():
    events = [new_event("lead.assigned", "l", {"lead_id": "l", "owner_id": "rep-1",
                                               "rule": "manual"}, seq, time=time)
              for seq, time in enumerate((NOON - dt.timedelta(milliseconds=1), NOON,
                                          NOON + dt.timedelta(seconds=1)), start=1)]
    assert [e["dealflowsequence"] for e in since(events, NOON)] == [2, 3]
