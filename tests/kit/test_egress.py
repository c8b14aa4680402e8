"""The outbound-URL guard: which URLs Errand may call, and that a request connects to the very
address that was checked (DNS rebinding), with the URL's host in its Host header.

Resolution is real (the event loop's getaddrinfo on IP literals and ``localhost``); the request
goes to a real HTTP server this test starts on 127.0.0.1.
"""

import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from errand.kit import egress


@pytest.mark.parametrize("url", [
    "ftp://example.com/", "file:///etc/passwd", "gopher://example.com/", "javascript:alert(1)",
    "http://user:pass@example.com/", "http://user@example.com/", "https://:pass@example.com/",
    "http:///nohost", "http://example.com:0/", "http://example.com:99999/", "http://exa mple.com/",
    "http://example.com/\x00", "http://example.com/\n", "", "http://" + "a" * 2100 + ".com/",
])
def test_a_url_of_a_refused_form_is_refused_before_any_lookup(url: str) -> None:
    with pytest.raises(egress.EgressRefused):
        egress.parse(url)


def test_a_url_that_is_not_a_string_is_refused() -> None:
    for value in (None, 42, ["http://example.com/"], {"url": "x"}):
        with pytest.raises(egress.EgressRefused):
            egress.parse(value)


@pytest.mark.parametrize("address", [
    "10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "127.8.9.10", "169.254.169.254", "0.0.0.0",
    "100.64.0.1", "224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1", "192.0.2.1", "198.18.0.1",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1",
    "::ffff:169.254.169.254", "2002:0a00:0001::1", "2001:db8::1", "64:ff9b::a00:1",
])
def test_private_loopback_link_local_multicast_and_reserved_addresses_are_not_public(address: str) -> None:
    assert not egress.is_public(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111",
                                     "::ffff:8.8.8.8"])
def test_global_unicast_addresses_are_public(address: str) -> None:
    assert egress.is_public(address)


@pytest.mark.parametrize("url", [
    "http://10.0.0.1/", "http://[::1]/", "http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:8080/",
    "http://localhost/", "https://LOCALHOST:8443/x", "http://[::ffff:10.0.0.1]/", "http://0.0.0.0/",
    "http://[fe80::1]/", "http://224.0.0.1/", "http://2130706433/", "http://0x7f000001/", "http://017700000001/",
])
async def test_a_url_resolving_to_a_private_address_is_refused(url: str) -> None:
    with pytest.raises(egress.EgressRefused, match="private|resolve"):
        await egress.resolve(url)


async def test_a_host_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(egress.EgressRefused, match="resolve"):
        await egress.resolve("https://no-such-host.invalid/hook")


async def test_an_allowed_host_skips_the_address_check_and_others_stay_refused() -> None:
    allowed = frozenset({"127.0.0.1", "localhost"})
    target = await egress.resolve("http://LocalHost:8080/hook?a=1", allowed)
    assert (target.host, target.port, target.scheme) == ("localhost", 8080, "http")
    assert target.address in {"127.0.0.1", "::1"}
    assert (await egress.resolve("http://127.0.0.1/x", allowed)).address == "127.0.0.1"
    with pytest.raises(egress.EgressRefused):
        await egress.resolve("http://10.0.0.1/", allowed)
    with pytest.raises(egress.EgressRefused):
        await egress.resolve("http://[::1]/", allowed)


async def test_a_public_address_resolves_to_itself_and_the_request_connects_there() -> None:
    target = await egress.resolve("https://93.184.216.34/hooks/1?x=2")
    assert target.address == "93.184.216.34" and target.port == 443
    async with httpx.AsyncClient() as client:
        request = egress.request(client, target, content=b"{}", headers={"webhook-id": "msg_1"})
    assert str(request.url) == "https://93.184.216.34/hooks/1?x=2"
    assert request.headers["host"] == "93.184.216.34"
    assert request.extensions["sni_hostname"] == "93.184.216.34"


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[int, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append({"host": request.headers.get("Host", ""), "peer": request.remote or "",
                     "path": request.path_qs, "body": (await request.read()).decode()})
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/{tail:.*}", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield port, seen
    finally:
        await runner.cleanup()


async def test_the_request_goes_to_the_checked_address_with_the_url_host_as_host_header(
    receiver: tuple[int, list[dict[str, str]]],
) -> None:
    port, seen = receiver
    target = await egress.resolve(f"http://localhost:{port}/in?k=v", frozenset({"localhost"}))
    assert "127.0.0.1" in target.addresses
    target = target.at("127.0.0.1")  # the receiver listens on IPv4 only
    with pytest.raises(ValueError):
        target.at("10.0.0.1")  # only an address that was checked
    assert target.connect_url == f"http://127.0.0.1:{port}/in?k=v"
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
        response = await client.send(egress.request(client, target, content=b'{"a":1}',
                                                    headers={"content-type": "application/json"}))
    assert response.status_code == 200
    assert seen == [{"host": f"localhost:{port}", "peer": "127.0.0.1", "path": "/in?k=v", "body": '{"a":1}'}]

