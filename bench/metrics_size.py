"""Metrics at size: `/metrics` scrape after 1,000 and 1,000,000 applied events, restart
to ready KPIs at both, the funnel at 100,000 leads (see bench/metrics.py). Runs apart from
`make bench` (`python -m bench metrics_size`): seeding a million events takes minutes."""
from bench import metrics


def run(ctx):
    return metrics.at_size(ctx)
