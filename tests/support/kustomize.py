"""deploy/k8s rendered offline by kustomize (var/bin, `make kustomize` builds it from the Go
module proxy), as `kubectl apply -k` would apply it."""
import functools
import subprocess

import yaml

from tests.conftest import ROOT

KUSTOMIZE = ROOT / "var" / "bin" / "kustomize"
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"


@functools.cache
def render(path):
    assert KUSTOMIZE.exists(), "kustomize missing: `make kustomize` builds it into var/bin"
    done = subprocess.run([str(KUSTOMIZE), "build", str(path)], check=False,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]
