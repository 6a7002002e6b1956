"""quotes.rendering in a process of its own (eventlet's thread pool is process-wide and
starts once): twenty concurrent renders run in the configured number of real threads,
not eventlet's default twenty, each of which would keep a malloc arena of rendered fonts
(make soak saw quotes' resident memory climb past 400 MB)."""
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = """
import eventlet; eventlet.monkey_patch()
import sys
from nameko.containers import ServiceContainer
from bench.quote_documents import fifty_line_quote, COMPANY
from quotes import documents, printing
from quotes.rendering import Renderer

# the bench's fifty-line quote is already a document: render it as printing would
printing.quote_pdf = documents.render_quote_pdf

class Probe:
    name = "probe"
    renderer = Renderer()

container = ServiceContainer(Probe, {"DOCUMENTS": {"render_threads": int(sys.argv[1])}})
renderer = next(iter(container.dependencies))
renderer.setup()
def os_threads():  # threading.active_count() is green once monkey-patched
    status = open("/proc/self/status").read()
    return int(status.split("Threads:")[1].split()[0])

quote, before = fifty_line_quote(), os_threads()
pool = eventlet.GreenPool(20)
pdfs = list(pool.imap(lambda _: renderer.quote_pdf(quote, COMPANY, "zh-CN"), range(20)))
assert all(pdf.startswith(b"%PDF") for pdf in pdfs)
print(os_threads() - before)
"""


def render_threads(configured):
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(configured)], cwd=ROOT, capture_output=True,
        text=True, timeout=240,
        env={"PYTHONPATH": f"{ROOT / 'services'}:{ROOT}", "EVENTLET_NO_GREENDNS": "yes",
             "PYTHONWARNINGS": "ignore", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    return int(out.stdout.split()[-1])


def test_twenty_concurrent_renders_use_the_configured_threads_only():
    assert render_threads(2) == 2
