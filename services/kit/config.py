"""Service configuration: a YAML file with `${VAR:default}` interpolation.

The same loader `nameko run --config` uses, so tests and processes read identical values.
"""
import yaml
from nameko.cli.main import setup_yaml_parser

_parser_ready = False


def load_config(path, **overrides):
    global _parser_ready
    if not _parser_ready:
        setup_yaml_parser()
        _parser_ready = True
    with open(path, encoding="utf-8") as fh:
        config = yaml.safe_load(fh) or {}
    config.update(overrides)
    return config


def setting(config, key, default=None):
    """Read a nested key such as ``"OUTBOX.batch_size"``."""
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node
