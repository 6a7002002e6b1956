"""A default written in code is the default of the YAML too: where a service's config.yml
sets a key, the code's fallback for that key says the same, so that a config without it
(a test's, a trimmed deployment's) behaves as documented. The YAML is read as shipped,
whatever the caller exported (tests.support.configs)."""
import ast
from pathlib import Path

import pytest

from kit.config import setting
from tests.support.configs import shipped_config

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
CONFIGS = sorted(SERVICES.glob("*/config.yml"))


def code_defaults():
    """(file:line, key, default) of every `setting(config, KEY, DEFAULT)` and
    `config_timer(KEY, DEFAULT)` with literal key and default."""
    found = []
    for path in sorted(SERVICES.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            args = {"setting": node.args[1:3], "config_timer": node.args[0:2]}.get(
                node.func.id)
            if not args or len(args) < 2:
                continue
            try:
                key, default = ast.literal_eval(args[0]), ast.literal_eval(args[1])
            except ValueError:
                continue
            found.append((f"{path.relative_to(ROOT)}:{node.lineno}", key, default))
    return found


def _same(code, yaml_value):
    if isinstance(code, (int, float)) and not isinstance(code, bool):
        try:
            return float(yaml_value) == float(code)
        except (TypeError, ValueError):
            return False
    return code == yaml_value


# Keys whose code fallback differs on purpose, and why.
DELIBERATE = {
    # a deployment that forgot its secret accepts no token, never the development one
    "AUTH.secret",
}
SHIPPED = {config: shipped_config(config) for config in CONFIGS}
CASES = [(where, key, default, config) for where, key, default in code_defaults()
         for config in CONFIGS
         if key not in DELIBERATE and setting(SHIPPED[config], key, KeyError) is not KeyError]


@pytest.mark.parametrize("where, key, default, config", CASES,
                         ids=[f"{c.parent.name}:{k}@{w}" for w, k, _, c in CASES])
def test_code_default_equals_the_yaml(where, key, default, config):
    assert _same(default, setting(SHIPPED[config], key)), (
        f"{where} falls back to {default!r} for {key}; {config.relative_to(ROOT)} says "
        f"{setting(SHIPPED[config], key)!r}")
