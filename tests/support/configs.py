"""A service's config.yml as shipped: its `${VAR:default}` defaults, whatever the caller
exported (AMQP_URI, RABBIT_API_URI, MONGO_DATABASE, a bench's KPIS_FUNNEL_PIPELINE...), so
that a unit test reading it passes in any shell."""
import re

import pytest

from kit.config import load_config

VARIABLE = re.compile(r"\$\{(\w+)")


def variables(path):
    """Every environment variable the file interpolates."""
    with open(path, encoding="utf-8") as fh:
        return sorted(set(VARIABLE.findall(fh.read())))


def shipped_config(path, **overrides):
    """The file loaded (kit.config.load_config) with none of its variables set."""
    with pytest.MonkeyPatch.context() as env:
        for name in variables(path):
            env.delenv(name, raising=False)
        return load_config(path, **overrides)
