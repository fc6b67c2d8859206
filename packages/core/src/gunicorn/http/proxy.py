"""PROXY protocol v1 and v2 headers (HAProxy's spec), read once at the start of a connection.

v1 is one text line of at most 107 bytes::

    "PROXY" SP ("TCP4" / "TCP6") SP src-addr SP dst-addr SP src-port SP dst-port CRLF
    "PROXY" SP "UNKNOWN" [ anything ] CRLF      ; use the socket's own addresses

v2 is binary::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +---------------------------------------------------------------+
    |     signature  \\r\\n\\r\\n\\0\\r\\nQUIT\\n  (12 bytes)              |
    +-------+-------+-------+-------+-------------------------------+
    |version|command|family |transp.|  length of what follows (BE)  |
    |  =2   |0 LOCAL|1 INET |1 STRM |                               |
    |       |1 PROXY|2 INET6|       |                               |
    +-------+-------+-------+-------+-------------------------------+
    | INET:  src addr (4) dst addr (4)   src port (2) dst port (2)   |
    | INET6: src addr (16) dst addr (16) src port (2) dst port (2)   |
    | then TLVs up to length, which we skip                         |
    +---------------------------------------------------------------+

A LOCAL command, the UNKNOWN protocol and the UNSPEC family carry no client address: the header
is consumed and ``None`` is returned, so the socket's addresses stay in force.
"""

from __future__ import annotations

import ipaddress
import re

from gunicorn.http.errors import InvalidProxyLine
from gunicorn.http.events import ProxyInfo

V1_PREFIX = b"PROXY "
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_MAX_LINE = 107  # including CRLF
_V2_HEADER = 16
_PORT_RE = re.compile(r"[0-9]{1,5}")


def detect(buf: bytes | bytearray, mode: str) -> int | None:
    """Which PROXY header starts ``buf``: 1 or 2, 0 for none, None when more bytes are needed.

    ``mode`` is ``"v1"``, ``"v2"`` or ``"auto"`` (both); ``"off"`` always gives 0.
    """
    if mode == "off":
        return 0
    undecided = False
    for version, signature in ((1, V1_PREFIX), (2, V2_SIGNATURE)):
        if mode not in ("auto", f"v{version}"):
            continue
        if buf[:len(signature)] == signature:
            return version
        if len(buf) < len(signature) and signature.startswith(buf):
            undecided = True
    return None if undecided else 0


def parse(buf: bytes | bytearray, version: int) -> tuple[int, ProxyInfo | None] | None:
    """Parse the header detected by :func:`detect`.

    Returns ``(bytes consumed, info)``, or None when the header is not complete yet.
    Raises InvalidProxyLine.
    """
    return _parse_v1(buf) if version == 1 else _parse_v2(buf)


def _parse_v1(buf: bytes | bytearray) -> tuple[int, ProxyInfo | None] | None:
    end = buf.find(b"\r\n", 0, V1_MAX_LINE)
    if end == -1:
        if len(buf) >= V1_MAX_LINE:
            raise InvalidProxyLine("PROXY v1 line longer than 107 bytes")
        return None
    try:
        line = bytes(buf[:end]).decode("ascii")
    except UnicodeDecodeError:
        raise InvalidProxyLine("non-ASCII byte in PROXY v1 line") from None
    fields = line.split(" ")
    if len(fields) >= 2 and fields[1] == "UNKNOWN":
        return end + 2, None
    if len(fields) != 6:
        raise InvalidProxyLine("PROXY v1 line does not have 6 fields")
    _, protocol, src, dst, src_port, dst_port = fields
    if protocol == "TCP4":
        family: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address] = ipaddress.IPv4Address
    elif protocol == "TCP6":
        family = ipaddress.IPv6Address
    else:
        raise InvalidProxyLine(f"unknown PROXY v1 protocol {protocol[:8]!r}")
    for address in (src, dst):
        try:
            # "%" would smuggle an IPv6 scope id that inet_pton refuses.
            if "%" in address:
                raise ValueError(address)
            family(address)
        except ValueError:
            raise InvalidProxyLine(f"invalid {protocol} address {address[:40]!r}") from None
    ports = []
    for port in (src_port, dst_port):
        if _PORT_RE.fullmatch(port) is None or int(port) > 65535:
            raise InvalidProxyLine(f"invalid port {port[:8]!r}")
        ports.append(int(port))
    return end + 2, ProxyInfo(src, ports[0], dst, ports[1], protocol)


def _parse_v2(buf: bytes | bytearray) -> tuple[int, ProxyInfo | None] | None:
    if len(buf) < _V2_HEADER:
        return None
    version_command, family_transport = buf[12], buf[13]
    length = int.from_bytes(buf[14:16], "big")
    if version_command >> 4 != 2:
        raise InvalidProxyLine("PROXY v2 header with a version other than 2")
    command = version_command & 0x0F
    if command > 1:
        raise InvalidProxyLine("PROXY v2 command is neither LOCAL nor PROXY")
    total = _V2_HEADER + length
    if len(buf) < total:
        return None
    if command == 0:
        return total, None  # LOCAL: a health check from the proxy itself
    family, transport = family_transport >> 4, family_transport & 0x0F
    if family == 0:
        return total, None
    if transport != 1:
        raise InvalidProxyLine("PROXY v2 transport is not STREAM")
    body = bytes(buf[_V2_HEADER:total])
    if family == 1:
        size, protocol, make = 4, "TCP4", ipaddress.IPv4Address
    elif family == 2:
        size, protocol, make = 16, "TCP6", ipaddress.IPv6Address  # type: ignore[assignment]
    else:
        raise InvalidProxyLine("PROXY v2 family is not INET, INET6 or UNSPEC")
    if length < 2 * size + 4:
        raise InvalidProxyLine("PROXY v2 address block too short")
    src = str(make(body[:size]))
    dst = str(make(body[size:2 * size]))
    src_port = int.from_bytes(body[2 * size:2 * size + 2], "big")
    dst_port = int.from_bytes(body[2 * size + 2:2 * size + 4], "big")
    return total, ProxyInfo(src, src_port, dst, dst_port, protocol)
