"""Where quote and contract PDFs are rendered: in a small pool of real threads.

Rendering is pure CPU (reportlab), so it runs outside the eventlet hub, which keeps
serving meanwhile. The pool is small on purpose: every OS thread that renders gets a glibc
malloc arena of its own and keeps what a render allocated (the CJK font subset), so
eventlet's default of 20 threads let the service's resident memory climb to 400 MB and
more under a steady funnel (make soak), while 2 threads hold it near 150 MB. More threads
render no faster: the GIL lets one render run at a time.
"""
from eventlet import tpool
from nameko.extensions import DependencyProvider

from kit.config import setting
from quotes import printing


class Renderer(DependencyProvider):
    def setup(self):
        # before the pool's first use, which starts its threads; process-wide by nature
        tpool.set_num_threads(int(setting(self.container.config,
                                          "DOCUMENTS.render_threads", 2)))

    def get_dependency(self, worker_ctx):
        return self

    @staticmethod
    def quote_pdf(quote, company, locale):
        return tpool.execute(printing.quote_pdf, quote, company, locale)

    @staticmethod
    def contract_pdf(contract, company, locale):
        return tpool.execute(printing.contract_pdf, contract, company, locale)
