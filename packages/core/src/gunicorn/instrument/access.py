"""Access-log atoms: the values ``access_log_format`` refers to, computed on demand.

``fmt % atoms`` looks up only the keys the format names, and this runs once per request, so
:class:`AccessAtoms` computes each atom on first use instead of building all twenty-odd of them.

======== ==================================  ======== ==================================
atom     value                               atom     value
======== ==================================  ======== ==================================
h        remote address                      l        ``-``
u        basic-auth user name                t        ``[10/Oct/2000:13:55:36 -0700]``
r        request line                        s        status code
m        method                              U        path
q        query string                        H        protocol (``HTTP/1.1``)
b        bytes sent, ``-`` when unknown      B        bytes sent
f        referer                             a        user agent
T        whole seconds                       D        microseconds
M        milliseconds                        L        seconds with 6 decimals
p        ``<pid>``                           {n}i     request header ``n``
{n}o     response header ``n``               {v}e     environ variable ``v``
======== ==================================  ======== ==================================

``request_id`` is the request's id (see :mod:`gunicorn.instrument.request_id`).

:meth:`AccessAtoms.fields` gives the same facts typed and unescaped, under the stable names of
JSON access lines (:mod:`gunicorn.instrument.jsonlog`).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import os
import time
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from gunicorn.instrument.request_id import ENVIRON_KEY as REQUEST_ID_KEY


def _timedelta(request_time: datetime.timedelta | float) -> datetime.timedelta:
    if isinstance(request_time, datetime.timedelta):
        return request_time
    return datetime.timedelta(seconds=request_time)


def _header(headers: Any, name: str) -> Any:
    """Case-insensitive lookup in a list of pairs or a mapping; the last duplicate wins."""
    pairs = headers.items() if hasattr(headers, "items") else headers
    found = None
    for key, value in pairs or ():
        if key.lower() == name:
            found = value
    return found


class AccessAtoms(Mapping[str, Any]):
    """The access-log atoms of one request, computed on first use and cached.

    ``fmt % atoms`` looks up only the keys ``fmt`` names. Missing values render as ``-``;
    ``{name}i``/``{name}o``/``{var}e`` keys are case-insensitive; double quotes in string values
    are escaped so a quoted atom cannot break the line's fields.
    """

    __slots__ = ("_resp", "_req", "_environ", "_duration", "_cache")

    def __init__(self, resp: Any, req: Any, environ: Mapping[str, Any],
                 request_time: datetime.timedelta | float) -> None:
        self._resp = resp
        self._req = req
        self._environ = environ if environ is not None else {}
        self._duration = _timedelta(request_time)
        self._cache: dict[str, Any] = {}

    # -- Mapping ------------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        try:
            return self._cache[key]
        except KeyError:
            pass
        value = self._compute(key)
        if value is None:
            value = "-"
        elif isinstance(value, str):
            value = value.replace('"', '\\"')
        self._cache[key] = value
        return value

    def __bool__(self) -> bool:
        # LogRecord tests the mapping's truth; without this Mapping would call __len__, which
        # computes every atom.
        return True

    def __iter__(self) -> Iterator[str]:
        # Only for formatters that walk record.args (JSON access logs): the hot path never iterates.
        yield from _SIMPLE_ATOMS
        req_headers = getattr(self._req, "headers", None) or ()
        for name, _ in req_headers.items() if hasattr(req_headers, "items") else req_headers:
            yield f"{{{name.lower()}}}i"
        resp_headers = getattr(self._resp, "headers", None) or ()
        for name, _ in resp_headers.items() if hasattr(resp_headers, "items") else resp_headers:
            yield f"{{{name.lower()}}}o"
        for name in self._environ:
            yield f"{{{name.lower()}}}e"

    def __len__(self) -> int:
        return sum(1 for _ in self)

    # -- atoms --------------------------------------------------------------------------------

    def _compute(self, key: str) -> Any:
        if key.startswith("{"):
            lowered = key.lower()
            if len(lowered) < 4 or lowered[-2] != "}":
                return None
            name, kind = lowered[1:-2], lowered[-1]
            if kind == "i":
                return _header(getattr(self._req, "headers", self._req), name)
            if kind == "o":
                return _header(getattr(self._resp, "headers", None), name)
            if kind == "e":
                return _header(self._environ, name)
            return None
        getter = _SIMPLE_ATOMS.get(key)
        return getter(self) if getter is not None else None

    def _env(self, key: str, fallback: Any = None) -> Any:
        value = self._environ.get(key)
        return fallback if value is None else value

    def _protocol(self) -> str | None:
        version = getattr(self._req, "version", None)
        fallback = f"HTTP/{version[0]}.{version[1]}" if version else None
        protocol: str | None = self._env("SERVER_PROTOCOL", fallback)
        return protocol

    def _method(self) -> str | None:
        method: str | None = self._env("REQUEST_METHOD", getattr(self._req, "method", None))
        return method

    def _status(self) -> str | None:
        code = getattr(self._resp, "status_code", None)
        if code is not None:
            return str(code)
        status = getattr(self._resp, "status", None)
        if isinstance(status, bytes):
            status = status.decode("latin-1")
        return str(status).split(None, 1)[0] if status else None

    def _request_line(self) -> str:
        uri = self._env("RAW_URI", getattr(self._req, "uri", None))
        return f"{self._method()} {uri} {self._protocol()}"

    def _user(self) -> str | None:
        auth = self._env("HTTP_AUTHORIZATION") or _header(getattr(self._req, "headers", ()),
                                                          "authorization")
        if not auth or not auth[:6].lower() == "basic ":
            return None
        try:
            decoded = base64.b64decode(auth[6:].strip().encode("ascii"), validate=True)
            return decoded.split(b":", 1)[0].decode("utf-8")
        except (ValueError, binascii.Error, UnicodeError):
            return None

    def _sent(self) -> int | None:
        return getattr(self._resp, "sent", None)

    def _seconds(self) -> int:
        d = self._duration
        return d.days * 86400 + d.seconds

    def _micros(self) -> int:
        return self._seconds() * 1_000_000 + self._duration.microseconds

    def _request_id(self) -> str | None:
        # WSGI: the environ; ASGI (no environ): the response cycle, which read it from the scope.
        request_id: str | None = self._env(REQUEST_ID_KEY, getattr(self._resp, "request_id", None))
        return request_id

    def fields(self) -> dict[str, Any]:
        """The request's facts for a structured (JSON) access line: raw strings (no ``-`` for
        missing values but None, no quote escaping), ``status`` and ``response_bytes`` as
        ints, ``duration`` in seconds as a float. ``path`` and ``query`` are as sent
        (percent-encoded), not the decoded ``PATH_INFO``."""
        status = self._status()
        return {
            "remote_addr": self._env("REMOTE_ADDR"),
            "method": self._method(),
            "path": getattr(self._req, "path", None) or self._env("PATH_INFO"),
            "query": self._env("QUERY_STRING", getattr(self._req, "query", None)),
            "protocol": self._protocol(),
            "status": int(status) if status is not None and status.isdigit() else status,
            "response_bytes": self._sent(),
            "duration": self._duration.total_seconds(),
            "user_agent": self._env("HTTP_USER_AGENT"),
            "referer": self._env("HTTP_REFERER"),
            "request_id": self._request_id(),
        }


_SIMPLE_ATOMS: Mapping[str, Any] = MappingProxyType({
    "h": lambda a: a._env("REMOTE_ADDR"),
    "l": lambda a: "-",
    "u": AccessAtoms._user,
    "t": lambda a: time.strftime("[%d/%b/%Y:%H:%M:%S %z]"),
    "r": AccessAtoms._request_line,
    "s": AccessAtoms._status,
    "m": AccessAtoms._method,
    "U": lambda a: a._env("PATH_INFO", getattr(a._req, "path", None)),
    "q": lambda a: a._env("QUERY_STRING", getattr(a._req, "query", None)),
    "H": AccessAtoms._protocol,
    "b": lambda a: "-" if a._sent() is None else str(a._sent()),
    "B": AccessAtoms._sent,
    "f": lambda a: a._env("HTTP_REFERER"),
    "a": lambda a: a._env("HTTP_USER_AGENT"),
    "T": AccessAtoms._seconds,
    "D": AccessAtoms._micros,
    "M": lambda a: a._micros() // 1000,
    "L": lambda a: f"{a._seconds()}.{a._duration.microseconds:06d}",
    "p": lambda a: f"<{os.getpid()}>",
    "request_id": AccessAtoms._request_id,
})


class DefaultingAtoms(Mapping[str, Any]):
    """Wraps the plain mapping a subclass's atoms() returned: '-' for missing atoms, and
    case-insensitive ``{...}`` keys (which must be stored lower-cased)."""

    __slots__ = ("_atoms",)

    def __init__(self, atoms: Mapping[str, Any]) -> None:
        self._atoms = atoms

    def __getitem__(self, key: str) -> Any:
        if key.startswith("{"):
            key = key.lower()
        value = self._atoms.get(key)
        return "-" if value is None else value

    def __bool__(self) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._atoms)

    def __len__(self) -> int:
        return len(self._atoms)

    def fields(self) -> dict[str, Any]:
        """:meth:`AccessAtoms.fields` from the subclass's atoms (missing ones are None)."""
        atoms = self._atoms
        found = {name: atoms.get(atom) for name, atom in _FIELD_ATOMS.items()}
        for name in ("status", "response_bytes"):
            value = found[name]
            if isinstance(value, str) and value.isdigit():
                found[name] = int(value)
        duration = atoms.get("D")
        found["duration"] = duration / 1_000_000 if isinstance(duration, int) else None
        return found


# The atom behind each JSON field, for DefaultingAtoms.fields().
_FIELD_ATOMS: Mapping[str, str] = MappingProxyType({
    "remote_addr": "h", "method": "m", "path": "U", "query": "q", "protocol": "H",
    "status": "s", "response_bytes": "B", "user_agent": "a", "referer": "f",
    "request_id": "request_id",
})
