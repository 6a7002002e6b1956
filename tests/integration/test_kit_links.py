"""Single use of a signed link recorded in a collection of the owning service (real
FerretDB): the first use is recorded, a second is refused 409 whatever the instance."""
import datetime as dt

import pytest

from kit import links

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def test_consume_records_the_first_use_and_refuses_a_second(mongo_db):
    keyring = links.Keyring({"k1": "x" * 40})
    claims = keyring.verify(keyring.sign("unsubscribe", "alice@example.com",
                                         NOW + dt.timedelta(days=1)), "unsubscribe", NOW)
    links.ensure_consumed_index(mongo_db.used_links)
    links.consume(mongo_db.used_links, claims, NOW)
    with pytest.raises(links.LinkUsed):
        links.consume(mongo_db.used_links, claims, NOW)
    (record,) = mongo_db.used_links.find({"_id": claims.link_id})
    assert (record["purpose"], record["subject"]) == ("unsubscribe", "alice@example.com")
