"""Which git hosts a repository analysis may reach.

A subject is user input, and the worker clones from inside the operator's network: without a
rule, `https://169.254.169.254/…` or `ssh://git@127.0.0.1:6379/x` would make it probe
metadata services and internal ports. By default every host that is, or resolves to, a
loopback, private, link-local, CGNAT, multicast, unspecified or otherwise non-public address
is refused, whatever its spelling (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1` and `0` are
all addresses to the C resolver git uses). `TASKLENS_GIT_ALLOWED_HOSTS` names the internal
git servers a team does want reached: host names, addresses or networks.

The API checks when a run is requested; the worker checks again right before the clone (a
name can resolve differently later) and pins git to the addresses it checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"^(?=.{{1,254}}\Z){_LABEL}(?:\.{_LABEL})*\.?\Z")  # \Z: no final newline
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_REFUSED = (
    "TaskLens does not reach loopback, private, link-local, CGNAT, multicast or unspecified "
    "addresses (an operator can allow an internal git server in TASKLENS_GIT_ALLOWED_HOSTS)"
)
RESOLVE_TIMEOUT_SECONDS = 10.0


class HostRefused(ValueError):
    """The host is not one the worker may reach (the message names the rule)."""


@dataclass(frozen=True, slots=True)
class AllowedHosts:
    """`TASKLENS_GIT_ALLOWED_HOSTS`: exact host names, and addresses or networks."""

    names: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowedHosts:
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if not _HOST_NAME.match(entry):
                    raise ValueError(
                        f"{entry!r} is neither a host name nor an address or network"
                    ) from None
                names.add(_normal(entry))
        return cls(frozenset(names), tuple(networks))

    def allows_name(self, host: str) -> bool:
        return _normal(host) in self.names

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


def _normal(host: str) -> str:
    return host.lower().rstrip(".")


def literal_address(host: str) -> IPAddress | None:
    """The address `host` spells, in any form the C resolver reads as one, or None for a
    name (`inet_aton` takes decimal, octal, hex and short forms, as git, curl and ssh do)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def refused_rule(address: IPAddress) -> str | None:
    """Why the worker must not connect to `address`, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return "IPv4-mapped"
        embedded = address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None and refused_rule(embedded) is not None:
            return f"{refused_rule(embedded)} (embedded in {address})"
    for rule, applies in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("site-local", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
        ("multicast", address.is_multicast),
        ("CGNAT", address in _CGNAT),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("non-public", not address.is_global),
    ):
        if applies:
            return rule
    return None


def check_literal(host: str, allowed: AllowedHosts) -> None:
    """Without resolving: refuse a host that is itself a refused address."""
    if not _HOST_NAME.match(host):
        raise HostRefused(f"subject: {host!r} is not a host name TaskLens accepts")
    address = literal_address(host)
    if address is None or allowed.allows_name(host) or allowed.allows_address(address):
        return
    rule = refused_rule(address)
    if rule is not None:
        raise HostRefused(f"subject: {host} is a {rule} address; {_REFUSED}")


async def resolve_checked(host: str, port: int, allowed: AllowedHosts) -> list[IPAddress]:
    """Every address `host` resolves to, each allowed; else HostRefused naming the rule."""
    check_literal(host, allowed)
    try:
        found = await asyncio.wait_for(
            asyncio.to_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM),
            RESOLVE_TIMEOUT_SECONDS,
        )
    except (OSError, TimeoutError):
        raise HostRefused(f"subject: the host {host} does not resolve") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(entry[4][0]) for entry in found))
    if not addresses:
        raise HostRefused(f"subject: the host {host} does not resolve")
    if allowed.allows_name(host):
        return addresses
    for address in addresses:
        rule = None if allowed.allows_address(address) else refused_rule(address)
        if rule is not None:
            spelled = "is" if literal_address(host) is not None else "resolves to"
            raise HostRefused(f"subject: {host} {spelled} a {rule} address; {_REFUSED}")
    return addresses


def curl_resolve(host: str, port: int, addresses: Sequence[IPAddress]) -> str:
    """The `http.curloptResolve` entry that pins curl to the addresses checked."""
    spelled = ",".join(f"[{a}]" if a.version == 6 else str(a) for a in addresses)
    return f"{host}:{port}:{spelled}"
