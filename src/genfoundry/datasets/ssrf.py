"""SSRF address policy: which addresses a server-side fetch of a user's URL may connect to."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Instance-metadata endpoints: AWS/GCP/Azure/OCI (169.254.169.254), AWS over IPv6, Alibaba, and Azure's
# WireServer, which sits in public address space and so would pass every range check below.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "168.63.129.16")
)
SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")
NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")

# Hosts made only of digits, hex digits, 'x' and dots may be numeric IPv4 in inet_aton's loose syntax.
_NUMERIC_HOST = re.compile(r"[0-9][0-9a-fx.]*", re.IGNORECASE)


class AddressRefused(Exception):
    """A host resolved to a forbidden address or could not be resolved; `reason` is shown to the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Parse the operator's allowed CIDRs, raising ValueError that names a bad entry."""
    networks: list[IPNetwork] = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"allowed_networks: {cidr!r} is not a network in CIDR notation ({exc})") from None
    return tuple(networks)


def ip_literal(host: str) -> IPAddress | None:
    """The address `host` names without DNS (including inet_aton forms such as 2130706433 or 0x7f.1), else None."""
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        pass
    # getaddrinfo reads numeric hosts with inet_aton's loose syntax, so 0x7f.1 and 2130706433 connect to
    # 127.0.0.1: judge them as that address rather than passing them on to DNS unchecked.
    if _NUMERIC_HOST.fullmatch(candidate):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(candidate))
        except OSError:
            return None
    return None


def refusal_reason(address: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why connecting to `address` is refused (e.g. "address 127.0.0.1 is loopback (not allowed)"), or None."""
    embedded = _embedded_ipv4(address)
    if _within(address, allowed) or (embedded is not None and _within(embedded, allowed)):
        return None
    if embedded is not None:
        kind = _classify(embedded)
        if kind is not None:
            return f"address {address} embeds {embedded}, which is {kind} (not allowed)"
        # An IPv4-mapped or NAT64 address is only a way of writing its IPv4 address, which passed.
        if isinstance(address, ipaddress.IPv6Address) and (
            address.ipv4_mapped is not None or address in NAT64_WELL_KNOWN
        ):
            return None
    kind = _classify(address)
    return None if kind is None else f"address {address} is {kind} (not allowed)"


async def resolve_checked(host: str, port: int, allowed: Sequence[IPNetwork], *, timeout: float | None) -> list[str]:
    """Resolve `host` once and return all its addresses, refusing the host if any of them is forbidden."""
    literal = ip_literal(host)
    if literal is not None:
        reason = refusal_reason(literal, allowed)
        if reason is not None:
            raise AddressRefused(reason)
        return [str(literal)]
    try:
        async with asyncio.timeout(timeout):
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise AddressRefused(f"could not resolve host {host}: DNS lookup timed out after {timeout:g} s") from None
    except OSError as exc:
        raise AddressRefused(f"could not resolve host {host} ({exc.strerror or exc})") from None
    addresses: list[str] = []
    for *_, sockaddr in infos:
        text = str(sockaddr[0])
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise AddressRefused(f"could not resolve host {host} (no addresses)")
    # Every address must pass, not just the first: the connection may fall back to any of them.
    for text in addresses:
        reason = refusal_reason(ipaddress.ip_address(text), allowed)
        if reason is not None:
            raise AddressRefused(f"host {host}: {reason}")
    return addresses


def _within(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    """True when `address` lies in one of `networks` (of the same IP version)."""
    return any(address.version == network.version and address in network for network in networks)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4, Teredo client, IPv4-compatible), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64_WELL_KNOWN or (address in IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _classify(address: IPAddress) -> str | None:
    """The kind of non-public address `address` is, or None for a globally routable unicast address."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in SHARED_ADDRESS_SPACE:
        return "shared address space (CGNAT)"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    # Catches what the named checks miss: documentation, benchmarking and other special-purpose ranges.
    if not address.is_global:
        return "not globally routable"
    return None
