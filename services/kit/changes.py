"""What a domain decides one write does, as a value (no I/O here): fields to set, values
to append, the events it causes as (type, data) pairs, entries of the entity's bucketed
log (kit.buckets), and who caused it. kit.versioned writes it; a domain whose change
says more (a deal's) maps onto it."""
from dataclasses import dataclass, field


@dataclass
class Change:
    set: dict = field(default_factory=dict)
    push: dict = field(default_factory=dict)
    events: list = field(default_factory=list)
    log: list = field(default_factory=list)
    actor: str | None = None
