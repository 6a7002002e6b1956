"""nameko's timer with its interval read from the service's config at setup, so that a
deployment (or a test) sets how often a check runs without touching code."""
from nameko.timer import Timer

from kit.config import setting


class ConfigTimer(Timer):
    def __init__(self, key, default, **kwargs):
        self.key = key
        super().__init__(interval=default, **kwargs)

    def setup(self):
        self.interval = float(setting(self.container.config, self.key, self.interval))


config_timer = ConfigTimer.decorator
