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


def package(frame):
    """Where a frame's code lives: a site-packages distribution, a service or kit module,
    the standard library."""
    match = FRAME.match(frame)
    path = match["path"] if match else frame
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/services/" in path:
        parts = path.split("/services/", 1)[1].split("/")
        return "/".join(parts[:2]) if len(parts) > 1 else parts[0]
    if "/bench/" in path:
        return "bench"
    return "python"


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
