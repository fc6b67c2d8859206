"""Build ASGI ``http`` and ``websocket`` scopes from parsed requests.

Three layers, so the per-request work is one dict literal plus the header list:

* per worker: :class:`ScopeBuilder` holds ``asgi``, ``root_path``, the extensions and the
  lifespan ``state``;
* per connection: :func:`socket_address` normalises the peer and local addresses once;
* per request: :meth:`ScopeBuilder.http` / :meth:`ScopeBuilder.websocket`.

``path`` includes ``root_path`` (as uvicorn does, and as Starlette and Django expect: they strip
``root_path`` from ``path`` when present). ``client`` and ``server`` come from a PROXY protocol
header when the connection had one, else from the socket.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote_to_bytes

from gunicorn.http.events import Request
from gunicorn.instrument.request_id import SCOPE_EXTENSION, RequestIds

Address = tuple[str, int | None] | None

_HTTP_VERSIONS: Mapping[tuple[int, int], str] = MappingProxyType({(1, 1): "1.1", (1, 0): "1.0"})
# Header names are client-chosen: the name cache stops growing at this size.
_NAME_CACHE_LIMIT = 512


def socket_address(addr: Any) -> Address:
    """An ASGI ``[host, port]`` pair from a socket address (``[path, None]`` for a Unix socket,
    None when unknown, e.g. the unnamed peer of a Unix socket)."""
    if isinstance(addr, tuple) and len(addr) >= 2:
        return (str(addr[0]), int(addr[1]))
    if isinstance(addr, bytes):
        addr = addr.decode("latin-1")
    if isinstance(addr, str) and addr:
        return (addr, None)
    return None


def decode_path(path: str) -> str:
    """Decode a request path (raw bytes as latin-1) into the ASGI ``path``.

    Percent-escapes are decoded and the resulting bytes read as UTF-8 (invalid bytes replaced),
    so ``/caf%C3%A9`` and a raw UTF-8 ``/café`` both give ``/café``.
    """
    if path.isascii() and "%" not in path:
        return path
    return unquote_to_bytes(path.encode("latin-1")).decode("utf-8", "replace")


class ScopeBuilder:
    """Makes scope dicts for one worker.

    ``state`` is the lifespan namespace: each scope gets a shallow copy of it (ASGI lifespan
    spec), and no ``state`` key at all when the application has no lifespan.
    """

    __slots__ = ("root_path", "_raw_root", "asgi", "state", "extensions", "_names", "request_ids")

    def __init__(self, root_path: str = "", request_ids: RequestIds | None = None) -> None:
        self.root_path = root_path.rstrip("/") if root_path != "/" else ""
        self._raw_root = self.root_path.encode("utf-8")
        self.asgi = {"version": "3.0", "spec_version": "2.4"}
        self.state: dict[str, Any] | None = None
        # Shared by every scope of the worker: applications only read extensions.
        self.extensions: dict[str, dict[str, Any]] = {
            "http.response.trailers": {},
            "http.response.informational": {},
            "http.response.pathsend": {},
        }
        self._names: dict[str, bytes] = {}
        # With request ids, each scope gets its own extensions dict: the shared entries plus
        # its "gunicorn.request_id".
        self.request_ids = request_ids

    def http(self, request: Request, client: Address, server: Address) -> dict[str, Any]:
        """The ``http`` scope of ``request`` received from ``client`` on ``server``."""
        path = request.path
        raw_path = path.encode("latin-1")
        if "%" in path or not path.isascii():
            path = decode_path(path)
        root = self.root_path
        if root and path != root and not path.startswith(root + "/"):
            path = root + path
            raw_path = self._raw_root + raw_path
        extensions = self.extensions
        if self.request_ids is not None:
            extensions = {**extensions, SCOPE_EXTENSION: {"id": self.request_ids.for_headers(
                request.headers, client if client is not None and client[1] is not None else None)}}
        proxy = request.proxy
        if proxy is not None:
            client = (proxy.src_addr, proxy.src_port)
            server = (proxy.dst_addr, proxy.dst_port)
        names = self._names
        headers = []
        for name, value in request.headers:
            key = names.get(name)
            if key is None:
                key = name.lower().encode("latin-1")
                if len(names) < _NAME_CACHE_LIMIT:
                    names[name] = key
            headers.append((key, value.encode("latin-1")))
        scope = {
            "type": "http",
            "asgi": self.asgi,
            "http_version": _HTTP_VERSIONS.get(request.version) or "{}.{}".format(*request.version),
            "method": request.method,
            "scheme": request.scheme,
            "path": path,
            "raw_path": raw_path,
            "query_string": request.query.encode("latin-1"),
            "root_path": root,
            "headers": headers,
            "client": client,
            "server": server,
            "extensions": extensions,
        }
        state = self.state
        if state is not None:
            scope["state"] = state.copy()
        return scope

    def websocket(self, request: Request, client: Address, server: Address) -> dict[str, Any]:
        """The ``websocket`` scope of an upgrade ``request`` (scheme ``ws``/``wss``)."""
        scope = self.http(request, client, server)
        scope["type"] = "websocket"
        scope["scheme"] = "wss" if request.scheme == "https" else "ws"
        scope.pop("method", None)
        request_id = scope["extensions"].get(SCOPE_EXTENSION)
        scope["extensions"] = {SCOPE_EXTENSION: request_id} if request_id is not None else {}
        protocols: list[str] = []
        for name, value in request.headers:
            if name == "SEC-WEBSOCKET-PROTOCOL":
                protocols.extend(p.strip() for p in value.split(",") if p.strip())
        scope["subprotocols"] = protocols
        return scope


def request_id_of(scope: Mapping[str, Any]) -> str | None:
    """The request id a :class:`ScopeBuilder` put in ``scope``, or None."""
    extension = scope.get("extensions", {}).get(SCOPE_EXTENSION)
    return extension.get("id") if extension is not None else None
