"""Build the PEP 3333 environ of a request.

Three layers, so the per-request work is one ``dict.copy()`` plus the request's own keys:

* per worker: :class:`EnvironBuilder` holds the constants (``wsgi.*``, ``SERVER_SOFTWARE``);
* per listener and connection: :meth:`EnvironBuilder.connection_base` adds the server and peer
  addresses and ``gunicorn.socket``;
* per request: :meth:`EnvironBuilder.build` adds the request line, headers, body and scheme.

``REMOTE_ADDR`` is the socket peer, or the source address of a PROXY protocol header; it is never
taken from ``X-Forwarded-For`` (a forwarded header is the application's business to trust).
"""

from __future__ import annotations

import os
import socket
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from gunicorn.errors import GunicornError
from gunicorn.instrument.request_id import ENVIRON_KEY as REQUEST_ID_KEY
from gunicorn.instrument.request_id import RequestIds
from gunicorn.version import SERVER_SOFTWARE
from gunicorn.wsgi.filewrapper import FileWrapper

if TYPE_CHECKING:
    from gunicorn.config.typed import CoreSettings

# Header names with no HTTP_ prefix in the environ (PEP 3333 / CGI 1.1 §4.1).
_UNPREFIXED = {"CONTENT-TYPE": "CONTENT_TYPE", "CONTENT-LENGTH": "CONTENT_LENGTH"}
_KEY_CACHE_LIMIT = 512


class PathOutsideScriptName(GunicornError):
    """The request path does not start with SCRIPT_NAME: a deployment error, answered with 500."""

    status = 500
    reason = "Internal Server Error"


def wsgi_path(path: str) -> str:
    """Percent-decode ``path`` into a WSGI "bytes as latin-1" str (PEP 3333 §Unicode Issues)."""
    if "%" not in path:
        return path
    return unquote_to_bytes(path).decode("latin-1")


def _host_server(host: str | None, scheme: str) -> tuple[str, str]:
    """SERVER_NAME and SERVER_PORT from a Host header (listeners with no TCP address)."""
    default_port = "443" if scheme == "https" else "80"
    if not host:
        return "", default_port
    if host.startswith("["):  # [v6]:port
        end = host.find("]")
        name, rest = host[: end + 1], host[end + 1:]
        return name, rest[1:] if rest.startswith(":") else default_port
    name, sep, port = host.rpartition(":")
    if not sep:
        return host, default_port
    return name, port


class EnvironBuilder:
    """Makes environ dicts for one worker.

    ``multithread`` is True for threaded workers; ``wsgi.multiprocess`` is ``workers > 1``;
    ``errors`` is ``wsgi.errors`` (the workers pass an
    :class:`~gunicorn.wsgi.errorlog.ErrorLogStream`; default ``sys.stderr``).
    """

    def __init__(self, cfg: CoreSettings, *, multithread: bool, errors: Any = None) -> None:
        self.script_name = os.environ.get("SCRIPT_NAME", "")
        self.base: dict[str, Any] = {
            "wsgi.version": (1, 0),
            "wsgi.multithread": multithread,
            "wsgi.multiprocess": cfg.workers > 1,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr if errors is None else errors,
            "SERVER_SOFTWARE": SERVER_SOFTWARE,
            "SCRIPT_NAME": self.script_name,
        }
        self._keys: dict[str, str] = {}
        self.request_ids = RequestIds.from_config(cfg)
        self._protocols: dict[tuple[int, int], str] = {}

    def connection_base(self, sock: socket.socket, peer: Any) -> dict[str, Any]:
        """The part of the environ shared by every request of one connection."""
        env = dict(self.base)
        env["gunicorn.socket"] = sock
        try:
            local = sock.getsockname()
        except OSError:
            local = ""
        if isinstance(local, tuple):
            env["SERVER_NAME"] = str(local[0])
            env["SERVER_PORT"] = str(local[1])
        if isinstance(peer, tuple):
            env["REMOTE_ADDR"] = str(peer[0])
            env["REMOTE_PORT"] = str(peer[1])
        elif isinstance(peer, bytes):
            env["REMOTE_ADDR"] = peer.decode("latin-1")
        else:
            env["REMOTE_ADDR"] = peer or ""
        return env

    def build(self, req: Any, conn_base: dict[str, Any], wsgi_input: Any,
              early_hints: Any) -> dict[str, Any]:
        """The environ of ``req`` (a :class:`gunicorn.http.events.Request`).

        Raises :class:`PathOutsideScriptName` when a SCRIPT_NAME is in force and the path is not
        under it.
        """
        env = conn_base.copy()
        version = req.version
        protocol = self._protocols.get(version)
        if protocol is None:
            protocol = self._protocols[version] = f"HTTP/{version[0]}.{version[1]}"
        env["REQUEST_METHOD"] = req.method
        env["QUERY_STRING"] = req.query or ""
        env["RAW_URI"] = req.uri
        env["SERVER_PROTOCOL"] = protocol
        env["wsgi.url_scheme"] = req.scheme
        env["wsgi.input"] = wsgi_input
        env["wsgi.early_hints"] = early_hints

        script_name = self.script_name
        keys = self._keys
        host = None
        for name, value in req.headers:
            key = keys.get(name)
            if key is None:
                if name == "SCRIPT_NAME":
                    # Only kept by the parser when the peer is a trusted forwarder.
                    script_name = value
                    continue
                key = _UNPREFIXED.get(name) or "HTTP_" + name.replace("-", "_")
                if len(keys) < _KEY_CACHE_LIMIT:  # bounded: header names are client-chosen
                    keys[name] = key
            if key in env:  # repeated header: one value, comma-joined (RFC 9110 §5.3)
                env[key] = env[key] + "," + value
            else:
                env[key] = value
            if key == "HTTP_HOST":
                host = value

        if "SERVER_NAME" not in env:  # UNIX socket: the only name the server has is the Host
            env["SERVER_NAME"], env["SERVER_PORT"] = _host_server(host, req.scheme)

        proxy = req.proxy
        if proxy is not None and proxy.src_addr is not None:
            env["PROXY_PROTOCOL"] = proxy.protocol
            env["REMOTE_ADDR"] = str(proxy.src_addr)
            env["REMOTE_PORT"] = str(proxy.src_port)
            env["PROXY_ADDR"] = str(proxy.dst_addr)
            env["PROXY_PORT"] = str(proxy.dst_port)

        path = req.path
        if script_name:
            if not path.startswith(script_name):
                raise PathOutsideScriptName(
                    f"request path {path!r} does not start with SCRIPT_NAME {script_name!r}")
            path = path[len(script_name):]
            env["SCRIPT_NAME"] = script_name
        env["PATH_INFO"] = wsgi_path(path)
        env[REQUEST_ID_KEY] = self.request_ids.for_environ(env, conn_base)
        return env
