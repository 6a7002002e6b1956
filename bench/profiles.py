"""What py-spy found: the top frames of a collapsed-stack profile (`py-spy record
--format raw`: one line per distinct stack, `outer;...;inner count`, each frame
`function (path:line)`), by own time, by time including callees, and by package."""
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<path>[^:()]*)(?::\d+)?\)$")


def parse(lines):
    """[(frames outer to inner, samples)] of the collapsed stacks."""
    stacks = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


SERVICES = ("kit", "leads", "deals", "metrics", "quotes", "support", "notify", "webhooks")


def package(frame):
    """Where a frame's code lives: our service or kit module, else the top-level package
    (a library, or the standard library's module: py-spy names files by their import
    path, e.g. `pymongo/pool.py`, or by a full path outside the import path)."""
    match = FRAME.match(frame)
    path = match["path"] if match else frame
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif "services/" in path:
        path = path.split("services/", 1)[1]
    elif path.startswith("/"):
        return "python"
    parts = path.split("/")
    if parts[0] in SERVICES and len(parts) > 1:
        return "/".join(parts[:2])
    return parts[0].removesuffix(".py") if len(parts) > 1 else "python"


def summary(stacks, n=10):
    total = sum(count for _, count in stacks) or 1
    own, inclusive, packages = Counter(), Counter(), Counter()
    for frames, count in stacks:
        own[frames[-1]] += count
        packages[package(frames[-1])] += count
        for frame in dict.fromkeys(frames):  # once per stack, in stack order
            inclusive[frame] += count

    def share(counter):
        return [[frame, round(100 * count / total, 1)] for frame, count in counter.most_common(n)]

    return {"samples": sum(count for _, count in stacks), "own_percent": share(own),
            "inclusive_percent": share(inclusive), "package_percent": share(packages)}


def top(path, n=10):
    path = Path(path)
    if not path.exists():
        return None
    return summary(parse(path.read_text().splitlines()), n)
