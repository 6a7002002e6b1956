"""One POST to a webhook target, connected to an address the target check passed.

requests (and urllib3's pool manager) would resolve the host again when they connect, and
a second look-up may answer differently (DNS rebinding: a public address for the check, the
metadata service for the request). Here the connection goes to the checked address, while
the Host header, TLS SNI and certificate verification keep the URL's host name."""
from urllib.parse import urlsplit

import certifi
import urllib3


class NoAnswer(Exception):
    """No HTTP answer: refused, timed out, TLS failed."""


def post(url, address, body, headers, timeout):
    """The HTTP status of POSTing `body` to `url` at `address`; redirects are not followed
    (they could lead past the allow-list)."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    if https:
        pool = urllib3.HTTPSConnectionPool(
            address, port, server_hostname=parts.hostname, assert_hostname=parts.hostname,
            cert_reqs="CERT_REQUIRED", ca_certs=certifi.where(), maxsize=1, retries=False,
            timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]))
    else:
        pool = urllib3.HTTPConnectionPool(
            address, port, maxsize=1, retries=False,
            timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        response = pool.urlopen("POST", path, body=body,
                                headers={**headers, "Host": parts.netloc.rsplit("@", 1)[-1]},
                                redirect=False, assert_same_host=False, preload_content=True)
        return response.status
    except urllib3.exceptions.HTTPError as exc:
        raise NoAnswer(f"{type(exc).__name__}: {exc}") from None
    finally:
        pool.close()
