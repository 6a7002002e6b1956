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
    assert links.sweep_consumed(mongo_db.used_links, NOW) == 0
    assert links.sweep_consumed(mongo_db.used_links, NOW + dt.timedelta(days=2)) == 1


def test_a_service_without_a_key_refuses_to_start(container_factory, make_config):
    from nameko.web.handlers import http

    class Signing:
        name = "signing"
        keys = links.LinkKeys()

        @http("GET", "/x")
        def x(self, request):
            return ""

    container = container_factory(Signing, make_config("leads", LINKS={"keys": ""}))
    with pytest.raises(ValueError, match="No key is configured"):
        container.start()
