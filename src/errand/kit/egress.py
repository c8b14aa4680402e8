"""The outbound-URL guard: where Errand may send a request a customer named (a webhook endpoint,
later an automation's webhook notification), checked when the URL is registered and again at
every send.

A URL is refused unless it is ``http`` or ``https``, at most :data:`MAX_URL_LENGTH` characters,
without credentials (``user:pass@``), with a host and a valid port, and every address its host
resolves to (through the event loop's ``getaddrinfo``) is public: never private, loopback,
link-local, multicast, reserved, unspecified, shared (100.64/10) or otherwise non-global, IPv4
addresses mapped into IPv6 (``::ffff:10.0.0.1``) included. A host listed in
``ERRAND_WEBHOOK_ALLOWED_HOSTS`` (:attr:`errand.kit.config.Settings.webhook_allowed_host_set`,
for development and tests) skips the address check.

DNS rebinding (a name that resolves to a public address when checked and to a private one when
the request connects) is closed by connecting to the address that was checked: :func:`resolve`
returns a :class:`Target` naming it, and :func:`request` sends to ``scheme://<that address>:port``
with the ``Host`` header and, for https, the TLS server name (SNI) and certificate check set to
the URL's host (httpx's documented ``sni_hostname`` request extension). No second lookup happens
between the check and the connection, so there is nothing to rebind. Redirects are never
followed (the caller's client has ``follow_redirects=False``): a 3xx would be a new, unchecked URL.
"""

import asyncio
import ipaddress
import socket
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

MAX_URL_LENGTH = 2048
SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class EgressRefused(ValueError):
    """The URL may not be called: ``str(exc)`` says why in words safe to show its owner (never a
    credential of the URL)."""


@dataclass(frozen=True)
class Target:
    """A checked URL: its parts, the ``address`` a request connects to, and every checked address
    of the host (``addresses``, in the resolver's order; :meth:`at` picks another after a failed
    connection)."""

    url: str
    scheme: str
    host: str
    port: int
    address: str
    addresses: tuple[str, ...] = ()

    def at(self, address: str) -> "Target":
        """The same target connecting to ``address``, which must be one of ``addresses``."""
        if address not in self.addresses:
            raise ValueError("not an address that was checked")
        return replace(self, address=address)

    @property
    def connect_url(self) -> str:
        """The URL with the checked address in place of the host name."""
        parts = urlsplit(self.url)
        ip = ipaddress.ip_address(self.address)
        netloc = f"[{ip}]:{self.port}" if ip.version == 6 else f"{ip}:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def parse(url: object) -> SplitResult:
    """``url``'s parts, if its form is acceptable (scheme, length, no credentials, a host, a
    valid port, no NUL or whitespace); raises :class:`EgressRefused` otherwise. Resolves nothing."""
    if not isinstance(url, str) or not url:
        raise EgressRefused("must be a URL string")
    if len(url) > MAX_URL_LENGTH:
        raise EgressRefused(f"must be at most {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise EgressRefused("must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise EgressRefused("is not a valid URL (host or port)") from None
    if parts.scheme.lower() not in SCHEMES:
        raise EgressRefused("must be an http or https URL")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise EgressRefused("must not carry credentials (user:password@)")
    if not parts.hostname:
        raise EgressRefused("must name a host")
    if port == 0:
        raise EgressRefused("must not use port 0")
    return parts


def is_public(address: str | IPAddress) -> bool:
    """Whether ``address`` is a public unicast address (an IPv4-mapped IPv6 address is judged as
    the IPv4 address it carries)."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return is_public(mapped)
        if ip.teredo is not None:
            return False
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
                                 or ip.is_reserved or ip.is_unspecified)


def _allowed(host: str, allowed_hosts: Collection[str]) -> bool:
    return host.lower().rstrip(".") in allowed_hosts or host.lower() in allowed_hosts


async def resolve(url: object, allowed_hosts: Collection[str] = ()) -> Target:
    """Check ``url`` (:func:`parse`), resolve its host with the running loop's ``getaddrinfo``
    and return the :class:`Target` a request must connect to: the first address (the others
    kept in ``addresses``, to try when it refuses), every address having been checked public
    unless the host is in ``allowed_hosts`` (lower-case names).

    Raises :class:`EgressRefused` for a refused form, a host that does not resolve, or any
    non-public address."""
    parts = parse(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port or DEFAULT_PORTS[scheme]
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise EgressRefused("host does not resolve") from None
    addresses = list(dict.fromkeys(str(ipaddress.ip_address(info[4][0].split("%", 1)[0])) for info in found))
    if not addresses:
        raise EgressRefused("host does not resolve")
    if not _allowed(host, allowed_hosts):
        for address in addresses:
            if not is_public(address):
                raise EgressRefused("resolves to a private, loopback, link-local or reserved address")
    return Target(url=str(url), scheme=scheme, host=host, port=port, address=addresses[0],
                  addresses=tuple(addresses))


def request(client: httpx.AsyncClient, target: Target, *, content: bytes,
            headers: Mapping[str, str]) -> httpx.Request:
    """A POST of ``content`` to ``target`` that connects to its checked address, with ``Host``
    and (https) SNI and certificate verification set to the URL's host; send it with
    ``client.send(req, stream=True)`` on a client built with ``follow_redirects=False``."""
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return client.build_request("POST", target.connect_url, content=content,
                                headers={**headers, "Host": target.host_header}, extensions=extensions)
