"""Where webhooks may go: an allow-list of host patterns, https, and public addresses only.

A webhook target is a URL an integrator typed in, called from inside our network: without
these rules it reaches the broker's management API, the database or a cloud's metadata
service (server-side request forgery). Outside local development every address the host
resolves to must be global (no loopback, private, link-local, reserved or multicast). The
caller resolves the host and passes the addresses, and must connect to one of exactly those
(a second look-up could answer differently: DNS rebinding).
"""
import fnmatch
import ipaddress
from urllib.parse import urlsplit


class TargetRefused(ValueError):
    pass


def host_of(url):
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http"):
        raise TargetRefused("a webhook URL starts with https://")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("a webhook URL carries no user name or password")
    if not parts.hostname:
        raise TargetRefused("a webhook URL names a host")
    return parts.scheme, parts.hostname.rstrip(".").lower()


def check_target(url, addresses, *, allow, development=False):
    """Refuse (TargetRefused, with the reason) a URL outside the rules; `addresses` are what
    its host resolves to, `allow` host patterns such as `hooks.example.com` or
    `*.erp.example.com`. In development plain http and local addresses are allowed."""
    scheme, host = host_of(url)
    if scheme != "https" and not development:
        raise TargetRefused("a webhook URL starts with https://")
    if not any(fnmatch.fnmatchcase(host, pattern.lower()) for pattern in allow):
        raise TargetRefused(f"{host} is not on the webhook allow-list")
    if not addresses:
        raise TargetRefused(f"{host} does not resolve")
    if development:
        return
    for address in addresses:
        ip = ipaddress.ip_address(address)
        ip = getattr(ip, "ipv4_mapped", None) or ip
        if not ip.is_global or ip.is_multicast:
            raise TargetRefused(f"{host} resolves to {address}, not a public address")
