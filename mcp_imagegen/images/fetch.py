"""Fetch an image from an http(s) URL without becoming a way into the user's network.

Off unless `IMAGEGEN_ALLOW_URL_INPUTS` is set. When on, every hop (the URL and each of at
most `MAX_REDIRECTS` redirects) is resolved first, and refused if any address it resolves
to is not a public one (loopback, private, link-local, multicast, reserved, shared, cloud
metadata), unless it is in a network the user allowed. The request then goes to the
address that was checked, not to a second lookup (no DNS rebinding), with the original
host in `Host` and in TLS SNI so certificates are still verified. The reply must be 200,
an `image/*` type, and no larger than the input limit, counted while it streams; the
whole fetch is bounded in time.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urljoin, urlsplit

import anyio
import httpx2

from mcp_imagegen.errors import InputError

MAX_REDIRECTS = 3
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (an IP literal resolves to itself)."""
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise InputError(f"the image URL's host {host!r} could not be resolved") from None
    return [ipaddress.ip_address(info[4][0]) for info in infos]


EMBEDDING_IPV4 = (
    (ipaddress.IPv6Network("64:ff9b::/96"), "NAT64"),
    (ipaddress.IPv6Network("::ffff:0:0:0/96"), "SIIT"),
    (ipaddress.IPv6Network("::/96"), "IPv4-compatible"),
)
"""IPv6 forms whose last 32 bits are the IPv4 address the packets reach (RFC 6052, 7915, 4291):
judged by that address. (IPv4-mapped `::ffff:a.b.c.d` is `IPv6Address.ipv4_mapped`; 6to4
`2002:aabb:ccdd::/48` is `.sixtofour`.)"""
UNJUDGEABLE = (
    (ipaddress.IPv6Network("64:ff9b:1::/48"), "a local-use NAT64 address"),
    (ipaddress.IPv6Network("2001::/32"), "a Teredo address"),
)
"""IPv6 forms that reach an IPv4 address this server cannot tell for sure (where a local-use
NAT64 prefix puts it depends on the network's prefix length; Teredo hides it): refused."""


def reached(address: IPAddress) -> IPAddress | str:
    """The address a connection to `address` ends up at: the IPv4 address an IPv6 transition form
    carries, or `address` itself; a string says why it cannot be told."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:  # ::ffff:127.0.0.1 is 127.0.0.1
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    for network, why in UNJUDGEABLE:
        if address in network:
            return why
    if int(address) > 1:  # `::` and `::1` are IPv6's own unspecified and loopback addresses
        for network, _ in EMBEDDING_IPV4:
            if address in network:
                return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def refusal(address: IPAddress, allowed: Sequence[IPNetwork]) -> str | None:
    """Why the server may not connect to `address`, or None if it may. An IPv6 form that carries
    an IPv4 address is judged by that address. An allowed network lets through its own addresses
    (and their IPv4-mapped form, which is the same socket), not a translator's form of them."""
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    if any(address in network or (mapped is not None and mapped in network) for network in allowed):
        return None
    target = reached(address)
    if isinstance(target, str):
        return f"{target}, whose IPv4 destination cannot be checked"
    return _judged(target)


def _judged(target: IPAddress) -> str | None:
    if target.is_global and not target.is_multicast:
        return None
    if target.is_loopback:
        return "a loopback address"
    if target.is_link_local:
        return "a link-local address (where cloud metadata services live)"
    return "a multicast address" if target.is_multicast else "a private or reserved address"


class UrlFetcher:
    def __init__(
        self,
        client: httpx2.AsyncClient,
        *,
        max_bytes: int,
        timeout_s: float,
        allowed_networks: Sequence[IPNetwork] = (),
    ) -> None:
        self._client = client
        self._max_bytes = max_bytes
        self._timeout_s = timeout_s
        self._allowed = tuple(allowed_networks)

    async def fetch(self, url: str, what: str) -> tuple[bytes, str]:
        """The image's bytes and a file name for it; InputError says what was refused and why."""
        with anyio.move_on_after(self._timeout_s) as limit:
            for _ in range(MAX_REDIRECTS + 1):
                response_or_next = await self._hop(url, what)
                if isinstance(response_or_next, str):
                    url = response_or_next
                    continue
                return response_or_next, _filename(url)
            raise InputError(f"{what}: the URL redirected more than {MAX_REDIRECTS} times")
        if limit.cancelled_caught:
            raise InputError(f"{what}: fetching the URL took longer than {self._timeout_s:.0f} s")
        raise AssertionError("unreachable")  # pragma: no cover

    async def _hop(self, url: str, what: str) -> bytes | str:
        """One request: the body, or the URL a redirect points to."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"{what}: only http and https URLs are fetched, not {url[:80]!r}")
        if parts.username or parts.password:
            raise InputError(f"{what}: URLs with a user name or password are not fetched")
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = await resolve_host(host, port)
        for address in addresses:
            reason = refusal(address, self._allowed)
            if reason is not None:
                raise InputError(
                    f"{what}: {host} resolves to {address}, {reason}; the server does not fetch from "
                    "there (IMAGEGEN_URL_ALLOWED_NETWORKS can allow a network you trust)"
                )
        pinned = addresses[0]
        literal = f"[{pinned}]" if pinned.version == 6 else str(pinned)
        target = parts._replace(netloc=f"{literal}:{port}").geturl()
        request = self._client.build_request(
            "GET",
            target,
            headers={"Host": parts.netloc, "Accept": "image/*"},
            extensions={"sni_hostname": host},
            timeout=httpx2.Timeout(self._timeout_s, connect=min(10.0, self._timeout_s)),
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx2.TransportError as exc:
            raise InputError(f"{what}: could not fetch {host}: {type(exc).__name__}") from None
        try:
            if response.status_code in REDIRECT_STATUSES and "location" in response.headers:
                return urljoin(url, response.headers["location"])
            if response.status_code != 200:
                raise InputError(f"{what}: {host} answered HTTP {response.status_code}")
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if not content_type.startswith("image/"):
                raise InputError(f"{what}: {host} sent {content_type or 'no content type'}, not an image")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self._max_bytes:
                raise InputError(
                    f"{what} is {int(declared):,} bytes, over the {self._max_bytes:,}-byte input limit"
                )
            return await self._capped_body(response, what)
        except httpx2.TransportError as exc:
            raise InputError(f"{what}: {host} broke off the download ({type(exc).__name__})") from None
        finally:
            await response.aclose()

    async def _capped_body(self, response: httpx2.Response, what: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_bytes:
                raise InputError(f"{what} is over the {self._max_bytes:,}-byte input limit")
            chunks.append(chunk)
        return b"".join(chunks)


def _filename(url: str) -> str:
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    return name if name and len(name) <= 100 else "image"
