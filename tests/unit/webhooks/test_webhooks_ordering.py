"""One entity's events in sequence order per subscription; a retry holds back only its own
entity."""
import datetime as dt

from webhooks.ordering import due, next_due

T0 = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
LATER = T0 + dt.timedelta(minutes=5)


def _d(subject, sequence, due_at=T0):
    return {"subject": subject, "sequence": sequence, "due_at": due_at}


def _keys(deliveries):
    return [(d["subject"], d["sequence"]) for d in deliveries]


def test_the_lowest_sequence_of_each_entity_goes_first():
    pending = [_d("a", 3), _d("a", 1), _d("b", 7), _d("a", 2)]
    assert sorted(_keys(due(pending, T0, 10))) == [("a", 1), ("b", 7)]


def test_a_delivery_waiting_for_its_retry_holds_back_its_entity_only():
    pending = [_d("a", 1, due_at=LATER), _d("a", 2), _d("b", 1)]
    assert _keys(due(pending, T0, 10)) == [("b", 1)]
    assert sorted(_keys(due(pending, LATER, 10))) == [("a", 1), ("b", 1)]


def test_gaps_in_sequence_do_not_hold_anything_back():
    # the subscription takes deal.won only: the deal's other changes never come
    assert _keys(due([_d("a", 9)], T0, 10)) == [("a", 9)]


def test_oldest_due_first_up_to_the_limit():
    pending = [_d("c", 1, T0), _d("a", 1, T0 - dt.timedelta(seconds=2)),
               _d("b", 1, T0 - dt.timedelta(seconds=1))]
    assert _keys(due(pending, T0, 2)) == [("a", 1), ("b", 1)]


def test_the_next_due_time_is_that_of_the_first_event_of_an_entity():
    # a's second event was due long ago, but waits behind a's first (retried LATER)
    pending = [_d("a", 1, due_at=LATER), _d("a", 2, due_at=T0),
               _d("b", 1, due_at=LATER + dt.timedelta(seconds=1))]
    assert next_due(pending) == LATER
    assert next_due([]) is None
