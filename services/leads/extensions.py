"""The leads rules, parsed from the config once per container."""
from nameko.extensions import DependencyProvider

from kit import reasons
from kit.config import setting
from leads import assignment, scoring
from leads.domain import LeadRules


def rules_from_config(config):
    """Parse scoring, assignment and SLA settings once; a malformed rule stops start-up."""
    return LeadRules(
        scoring=tuple(scoring.parse_rules(setting(config, "SCORING.rules"))),
        grades=scoring.parse_grades(setting(config, "SCORING.grades",
                                            {"A": 60, "B": 35, "C": 15})),
        assignment=assignment.AssignmentRules(
            territories=assignment.parse_territories(
                setting(config, "ASSIGNMENT.territories")),
            teams={str(k): [str(r) for r in v or ()]
                   for k, v in (setting(config, "ASSIGNMENT.teams") or {}).items()},
            default_cap=int(setting(config, "ASSIGNMENT.default_cap", 50)),
            caps={str(k): int(v)
                  for k, v in (setting(config, "ASSIGNMENT.caps") or {}).items()},
            fallback_queue=str(setting(config, "ASSIGNMENT.fallback_queue", "unassigned")),
        ),
        response_minutes=float(setting(config, "SLA.response_minutes", 60) or 0),
        reassign_overdue=_flag(setting(config, "SLA.reassign_overdue", False)),
        disqualify_reasons=tuple(reasons.with_other(
            setting(config, "DISQUALIFY.reasons") or [])),
    )


def _flag(value):
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


class Rules(DependencyProvider):
    def setup(self):
        self.rules = rules_from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.rules
