"""A TCP proxy that can cut a service off from a real server, to inject outages, and the
integration tests' fixtures that put one in front of the test database or broker (the
integration conftest offers them): point a service at `proxy.uri`, then `down()`/`up()`."""
import contextlib
import socket
from urllib.parse import urlsplit, urlunsplit

import eventlet
import pytest
from eventlet.green import socket as gsocket

DEFAULT_PORTS = {"mongodb": 27017, "amqp": 5672, "pyamqp": 5672}


class TcpProxy:
    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.port = None
        self.uri = None  # the server's URI through this proxy, when proxied() made it
        self._listener = None
        self._conns = set()
        self._accepting = None

    def up(self):
        sock = gsocket.socket(gsocket.AF_INET, gsocket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port or 0))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._accepting = eventlet.spawn(self._accept, sock)
        return self

    def down(self):
        """Refuse new connections and reset every open one, as a dead broker would."""
        if self._accepting is not None:
            self._accepting.kill()
            self._accepting = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for conn in list(self._conns):
            # shutdown, not close: the pipes blocked in recv() see EOF and close their ends
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._conns.clear()

    def _accept(self, listener):
        while True:
            client, _ = listener.accept()
            try:
                upstream = gsocket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            self._conns.update((client, upstream))
            eventlet.spawn(self._pipe, client, upstream)
            eventlet.spawn(self._pipe, upstream, client)

    def _pipe(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except (OSError, EOFError):
            pass
        finally:
            for s in (src, dst):
                self._conns.discard(s)
                try:
                    s.close()
                except OSError:
                    pass


def via(uri, port):
    """`uri` through a proxy on this host's `port`: credentials, path (a vhost, a
    database) and options kept."""
    parts = urlsplit(uri)
    userinfo, at, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo}{at}127.0.0.1:{port}"))


@contextlib.contextmanager
def proxied(uri):
    """A TcpProxy, up, in front of the server `uri` names, with `.uri` the same URI through
    it; cut when the block ends."""
    parts = urlsplit(uri)
    proxy = TcpProxy(parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme]).up()
    proxy.uri = via(uri, proxy.port)
    try:
        yield proxy
    finally:
        proxy.down()


@pytest.fixture
def database_proxy():
    """A proxy in front of the test database; `.uri` is a MONGO_URI through it."""
    from tests.conftest import MONGO_URI
    with proxied(MONGO_URI) as proxy:
        yield proxy


@pytest.fixture
def broker_proxy(rabbit_config):
    """A proxy in front of the test's broker; `.uri` is its AMQP_URI (vhost kept) through
    it."""
    with proxied(rabbit_config["AMQP_URI"]) as proxy:
        yield proxy


class ProxyProcess:
    """A TcpProxy in a process of its own (`python -m tests.support.proxy`), so that a
    busy test process never slows the connections of the services behind it; `down()` and
    `up()` switch it through a file it watches."""

    def __init__(self, target_host, target_port, workdir):
        import subprocess
        import sys
        from pathlib import Path

        from tests.support.wait import wait_for

        self.switch = Path(workdir) / f"proxy-{target_port}-down"
        ready = Path(workdir) / f"proxy-{target_port}-port"
        ready.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.proxy", target_host, str(target_port),
             str(self.switch), str(ready)], cwd=Path(__file__).resolve().parents[2])
        assert wait_for(lambda: ready.exists() and ready.read_text().strip(), 20), \
            "the proxy did not start"
        self.port = int(ready.read_text())

    def down(self):
        self.switch.touch()

    def up(self):
        self.switch.unlink(missing_ok=True)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def _serve(target_host, target_port, switch, ready):
    from pathlib import Path

    proxy = TcpProxy(target_host, int(target_port)).up()
    Path(ready).write_text(str(proxy.port))
    is_down = False
    while True:
        want_down = Path(switch).exists()
        if want_down and not is_down:
            proxy.down()
        elif is_down and not want_down:
            proxy.up()
        is_down = want_down
        eventlet.sleep(0.05)


if __name__ == "__main__":
    import sys

    eventlet.monkey_patch()
    _serve(*sys.argv[1:5])
