"""A private Mailpit for the notify tests, and the local chat and SMS receivers."""
import pytest

from tests.support.mailpit import Mailpit
from tests.support.receivers import DingTalkRobot, TencentSms, WeComRobot


@pytest.fixture(scope="session")
def mailpit(tmp_path_factory):
    server = Mailpit(str(tmp_path_factory.mktemp("mailpit"))).start()
    yield server
    server.stop()


@pytest.fixture
def inbox(mailpit):
    if mailpit.proc is None:  # a test that stopped it failed before starting it again
        mailpit.start()
    mailpit.clear()
    return mailpit


@pytest.fixture
def dingtalk():
    robot = DingTalkRobot("tok-1", "SEC-dingtalk-secret").start()
    yield robot
    robot.stop()


@pytest.fixture
def wecom():
    robot = WeComRobot("wecom-key-1").start()
    yield robot
    robot.stop()


@pytest.fixture
def sms_gateway():
    gateway = TencentSms("AKID-test", "secret-key-test").start()
    yield gateway
    gateway.stop()
