"""The whole platform proves the whole sales process: every service as a process, a
scripted funnel of at least 200 leads through the HTTP APIs and customer links only
(tests/e2e/funnel_script.py); the KPIs computed from the script must then be exactly what
/metrics, /api/v1/funnel, Prometheus and every Grafana panel show, and the notifications
exactly what reached the inbox and the chat robots."""
import datetime as dt
import os

import pytest

from tests.e2e import funnel_script as funnel
from tests.e2e.test_metrics_prometheus import running_prometheus

LEADS = int(os.environ.get("FUNNEL_LEADS", 200))


@pytest.fixture
def whole(rabbit_config, tmp_path):
    running = funnel.WholePlatform(rabbit_config["AMQP_URI"], tmp_path).start()
    yield running
    codes = running.stop()
    assert set(codes.values()) == {0}, codes


@pytest.fixture
def prometheus(whole, tmp_path):
    jobs = {name: [int(url.rsplit(":", 1)[1])] for name, url in whole.urls.items()}
    with running_prometheus(jobs, tmp_path) as api:
        # a few scrapes of the empty state first, so that increase() has a baseline
        funnel.poll(lambda: (api.value('count_over_time(up{job="metrics"}[1m])') or 0) >= 3,
                    "first scrapes")
        yield api


@pytest.mark.timeout(900)
def test_the_whole_sales_process_shows_exactly_what_happened(whole, prometheus):
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    driver = funnel.Driver(whole.urls)
    driver.setup()
    want = driver.run(funnel.plan(LEADS))

    assert funnel.settled(lambda: funnel.shown(whole.urls, want), want.samples, 60) \
        == want.samples
    until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    assert funnel.funnel_shown(whole.urls, since, until) == funnel.funnel_wanted(want)
    assert funnel.settled(lambda: funnel.mail_shown(whole.mailpit), want.emails, 60) \
        == want.emails
    assert funnel.settled(lambda: (len(whole.dingtalk.received), len(whole.wecom.received)),
                          (want.chats, want.chats), 30) == (want.chats, want.chats)
    wrong = funnel.settled(lambda: funnel.prometheus_mismatches(prometheus, want), [], 30)
    assert wrong == []
