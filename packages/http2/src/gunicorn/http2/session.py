"""The sans-IO HTTP/2 server session: one per connection, shared by every driver.

``H2Connection`` (python-hyper/h2) does framing, HPACK and the stream state machines; this
module adds the server's policy on top and turns h2's events into a few of our own, once, so
the threaded and the asyncio drivers only move bytes and run applications::

    driver ──receive(bytes, now)──> Session ──> [RequestReady, BodyChunk, BodyEnd,
                                                 StreamGone, WindowChanged, ConnectionGone]
    driver <──data_to_send()─────── Session <── send_head / send_body / end / consumed /
                                                 finish / goaway (from the application side)

Policy kept here:

* too many streams -> RST_STREAM REFUSED_STREAM for that stream only (RFC 9113 §5.1.2; h2
  itself would end the whole connection). A stream counts until the driver *finishes* it,
  unless both sides ended it normally (the client then counts it closed too and may open the
  next one): resetting a stream never frees its slot while its application still runs;
* a stream reset in the same batch of bytes that opened it is never reported: the driver
  never starts an application for it (:meth:`receive` looks at the batch as a whole);
* rapid reset (CVE-2023-44487) and "MadeYouReset" (CVE-2025-8671): every reset draws on one
  token bucket, the peer's and ours alike (refusals, malformed requests, the STREAM_CLOSED h2
  answers to frames on a stream the peer had ended); running dry ends the connection with
  ENHANCE_YOUR_CALM;
* memory: h2's record of closed streams is bounded (:mod:`gunicorn.http2.limits`), and
  :meth:`discard` breaks h2's internal reference cycle, so a closed connection is freed by
  reference counting instead of waiting for a full garbage collection;
* request bodies: credit (WINDOW_UPDATE) only as the application consumes bytes
  (:meth:`consumed`), unread bytes credited back to the connection when a stream finishes, a
  body cap answered with 413;
* sending: frames bounded by the *peer's* max frame size and both flow-control windows;
* graceful GOAWAY that still lets streams already accepted finish (h2's own ``close_connection``
  would refuse every later frame, so the GOAWAY frame is serialised here).

No I/O, no clock: time comes in as ``now``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import h2.config
import h2.events
import h2.exceptions
import h2.settings
from gunicorn.http.errors import HTTPError
from gunicorn.http.events import Headers, Request
from gunicorn.http.options import ParserOptions
from gunicorn.http2.errors import MalformedRequest, StreamClosed
from gunicorn.http2.limits import (
    BoundedConnection,
    CeilingSettings,
    ResetBudget,
    closed_streams_kept,
)
from gunicorn.http2.metrics import NO_METRICS, H2Metrics
from gunicorn.http2.request import map_request
from gunicorn.version import SERVER_SOFTWARE
from h2.errors import ErrorCodes

if TYPE_CHECKING:
    from gunicorn.http2.typed_settings import Http2Settings
from hyperframe.frame import GoAwayFrame

DEFAULT_WINDOW = 65535


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """The per-worker constants of a session (built once from the configuration)."""

    options: ParserOptions
    max_concurrent_streams: int = 100
    initial_window_size: int = DEFAULT_WINDOW
    max_frame_size: int = 16384
    max_header_list_size: int = 65536
    max_request_body: int = 0
    max_reset_rate: int = 100
    metrics: H2Metrics = NO_METRICS
    # RFC 8441: announce extended CONNECT (the asgi worker, when it can serve WebSockets).
    enable_connect_protocol: bool = False

    @classmethod
    def from_config(cls, cfg: Http2Settings, options: ParserOptions | None = None,
                    metrics: H2Metrics = NO_METRICS, **fields: Any) -> SessionConfig:
        """The http2_* settings of ``cfg``; ``fields`` sets the driver-specific rest."""
        return cls(options or ParserOptions.from_config(cfg), cfg.http2_max_concurrent_streams,
                   cfg.http2_initial_window_size, cfg.http2_max_frame_size,
                   cfg.http2_max_header_list_size, cfg.http2_max_request_body,
                   cfg.http2_max_reset_rate, metrics, **fields)


# -- events -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RequestReady:
    """A new stream whose request the application should serve. ``ended``: no body follows."""

    stream_id: int
    request: Request
    ended: bool
    weight: int = 16
    depends_on: int = 0


@dataclass(frozen=True, slots=True)
class BodyChunk:
    """Request body bytes; report them with :meth:`Session.consumed` once the app took them."""

    stream_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class BodyEnd:
    """The request body is complete; ``trailers`` as ``[(NAME, value)]``."""

    stream_id: int
    trailers: Headers


@dataclass(frozen=True, slots=True)
class StreamGone:
    """The peer reset the stream (or the session did): stop its application's I/O."""

    stream_id: int
    code: int


@dataclass(frozen=True, slots=True)
class WindowChanged:
    """Send windows grew (WINDOW_UPDATE or SETTINGS): blocked senders may retry."""


@dataclass(frozen=True, slots=True)
class ConnectionGone:
    """The connection is over (peer GOAWAY, protocol error, reset flood): flush and close."""

    code: int
    reason: str


Event = RequestReady | BodyChunk | BodyEnd | StreamGone | WindowChanged | ConnectionGone


class _Stream:
    __slots__ = ("received", "unacked", "head_sent", "ended_local", "ended_remote", "body_cap",
                 "complete")

    def __init__(self, body_cap: int) -> None:
        self.received = 0     # flow-controlled bytes received (padding included)
        self.unacked = 0      # of which not yet credited back
        self.head_sent = False
        self.ended_local = False
        self.ended_remote = False
        self.body_cap = body_cap
        self.complete = False  # both sides ended it, no reset: it no longer counts as open


class Session:
    """The HTTP/2 server side of one connection.

    ``trusted``: the peer is in ``forwarded_allow_ips`` (forwarded headers and ``:scheme`` are
    believed). ``is_ssl``: the transport scheme is https.
    """

    def __init__(self, config: SessionConfig, *, trusted: bool, is_ssl: bool,
                 now: float = 0.0) -> None:
        self.config = config
        self.trusted = trusted
        self.is_ssl = is_ssl
        # Outbound fields are already validated and lower-cased by the drivers (the HTTP/1.1
        # response rules, then gunicorn.http2.fields): h2 checking them again costs ~8 us
        # a response and finds nothing.
        self._h2 = BoundedConnection(h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_inbound_headers=False,
            normalize_inbound_headers=False, validate_outbound_headers=False,
            normalize_outbound_headers=False), closed_streams_kept(config.max_concurrent_streams))
        self.metrics = config.metrics
        self._streams: dict[int, _Stream] = {}
        self._complete = 0  # of which complete (not counted against the limit)
        # Streams opened by the batch receive() is reading, and those of them it already
        # saw reset (never reported to the driver).
        self._fresh: set[int] = set()
        self._dropped: set[int] = set()
        self._pending = b""        # our own frames, ordered before h2's later output
        self._resets = ResetBudget(config.max_reset_rate, now)
        self.going_away = False    # graceful GOAWAY sent: no new streams
        self.closed = False        # nothing more may be sent; flush and close

    # -- setup --------------------------------------------------------------------------------

    def initiate(self, upgrade: Request | None = None,
                 settings_header: bytes | None = None) -> list[Event]:
        """Queue the server preface (SETTINGS). For an ``Upgrade: h2c`` request pass it and
        its ``HTTP2-Settings`` value: it becomes stream 1, already complete (RFC 7540 §3.2)."""
        cfg = self.config
        initial = {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: cfg.max_concurrent_streams,
                   h2.settings.SettingCodes.ENABLE_PUSH: 0}
        if cfg.max_header_list_size:
            initial[h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE] = cfg.max_header_list_size
        if cfg.enable_connect_protocol:
            initial[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] = 1
        conn = self._h2
        conn.local_settings = CeilingSettings(client=False, initial_values=initial)
        if cfg.max_header_list_size == 0:
            # 0 = unlimited, not "nothing fits" (hpack reads None as no limit).
            conn.decoder.max_header_list_size = None  # type: ignore[assignment]
        if upgrade is None:
            conn.initiate_connection()
        else:
            conn.initiate_upgrade_connection(settings_header)
        # Window and frame size wait for the peer's ACK before they bind it (h2 keeps them
        # pending), so a smaller window is never enforced on bytes sent before the peer knew.
        changes: dict[h2.settings.SettingCodes | int, int] = {}
        if cfg.initial_window_size != DEFAULT_WINDOW:
            changes[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] = cfg.initial_window_size
        if cfg.max_frame_size != 16384:
            changes[h2.settings.SettingCodes.MAX_FRAME_SIZE] = cfg.max_frame_size
        if changes:
            conn.update_settings(changes)
        if cfg.initial_window_size > DEFAULT_WINDOW:
            conn.increment_flow_control_window(cfg.initial_window_size - DEFAULT_WINDOW)
        if upgrade is None:
            return []
        self._add_stream(1, cfg.max_request_body)
        self.metrics.streams.inc()
        return [RequestReady(1, upgrade, True)]

    # -- input --------------------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> list[Event]:
        """Feed bytes from the peer; return what the driver must act on."""
        if self.closed:
            return []
        try:
            h2_events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            # h2 has queued GOAWAY with the matching code (FRAME_SIZE_ERROR, FLOW_CONTROL_ERROR..).
            self.closed = True
            code = getattr(exc, "error_code", None) or ErrorCodes.PROTOCOL_ERROR
            self.metrics.goaway(int(code))
            return [ConnectionGone(int(code), f"protocol error: {exc}")]
        out: list[Event] = []
        handlers = self._HANDLERS
        for ev in h2_events:
            handler = handlers.get(type(ev))
            # Events not in the table (PingReceived, SettingsAcknowledged, PriorityUpdated ...)
            # need nothing from the driver: h2 has answered them itself.
            if handler is not None and handler(self, ev, out, now):
                break  # the connection is over: later events do not matter
        if self._fresh:
            out = self._end_batch(out)
        return out

    def _end_batch(self, out: list[Event]) -> list[Event]:
        """Forget the streams this batch opened; drop the events of those it also reset, so
        no application is ever started for them."""
        dropped = self._dropped
        self.metrics.streams.inc(len(self._fresh) - len(dropped))
        self._fresh.clear()
        if not dropped:
            return out
        kept = [ev for ev in out if getattr(ev, "stream_id", 0) not in dropped]
        dropped.clear()
        return kept

    def _add_stream(self, sid: int, body_cap: int) -> _Stream:
        stream = self._streams[sid] = _Stream(body_cap)
        self.metrics.active.inc()
        return stream

    def _remove_stream(self, sid: int) -> _Stream | None:
        stream = self._streams.pop(sid, None)
        if stream is not None:
            self.metrics.active.dec()
            if stream.complete:
                self._complete -= 1
        return stream

    def _check_complete(self, stream: _Stream) -> None:
        """Both END_STREAMs are out: the stream is closed for the peer as for us."""
        if stream.ended_local and stream.ended_remote and not stream.complete:
            stream.complete = True
            self._complete += 1

    def _on_request(self, ev: Any, out: list[Event], now: float) -> bool:
        sid = ev.stream_id
        cfg = self.config
        # The limit counts every stream whose application has not finished (the driver calls
        # finish()), whether or not the peer has closed or reset it since: resetting streams
        # never frees a slot while work for them goes on (rapid reset).
        if self.going_away or len(self._streams) - self._complete >= cfg.max_concurrent_streams:
            return self._refuse(sid, ErrorCodes.REFUSED_STREAM, now, out)
        try:
            req = map_request(ev.headers, cfg.options, trusted=self.trusted, is_ssl=self.is_ssl,
                              connect_protocol=cfg.enable_connect_protocol)
        except MalformedRequest:
            return self._refuse(sid, ErrorCodes.PROTOCOL_ERROR, now, out)
        except HTTPError as exc:
            self._answer(sid, exc.status, exc.reason)
            return False
        if cfg.max_request_body and (req.content_length or 0) > cfg.max_request_body:
            self._answer(sid, 413, "Content Too Large")
            return False
        # An extended CONNECT stream (a WebSocket) carries frames, not a body to cap.
        stream = self._add_stream(sid, 0 if req.upgrade else cfg.max_request_body)
        self._fresh.add(sid)
        ended = stream.ended_remote = ev.stream_ended is not None
        prio = ev.priority_updated
        if prio is not None:
            out.append(RequestReady(sid, req, ended, prio.weight, prio.depends_on))
        else:
            out.append(RequestReady(sid, req, ended))
        return False

    def _refuse(self, sid: int, code: int, now: float, out: list[Event]) -> bool:
        """Reset a stream we will not serve; True when that ended the connection."""
        self._reset(sid, code)
        return self._spend_reset(now, out)

    def _on_data(self, ev: Any, out: list[Event], now: float) -> None:
        sid = ev.stream_id
        stream = self._streams.get(sid)
        flow = ev.flow_controlled_length
        if stream is None:
            # A refused or finished stream: nobody will read it, credit the connection now.
            self._credit(sid, flow)
            return
        stream.received += flow
        stream.unacked += flow
        if stream.body_cap and stream.received > stream.body_cap:
            self._credit(sid, stream.unacked)
            stream.unacked = 0
            out.append(StreamGone(sid, int(ErrorCodes.CANCEL)))
            if stream.head_sent:
                self._reset(sid, ErrorCodes.CANCEL)
            else:
                stream.head_sent = stream.ended_local = True  # the 413 below is the response
                self._answer(sid, 413, "Content Too Large")
            return
        if ev.data:
            out.append(BodyChunk(sid, ev.data))
        elif flow:
            self.consumed(sid, flow)  # padding only

    def _on_stream_ended(self, ev: Any, out: list[Event], now: float) -> None:
        stream = self._streams.get(ev.stream_id)
        if stream is not None and not stream.ended_remote:
            stream.ended_remote = True
            self._check_complete(stream)
            out.append(BodyEnd(ev.stream_id, []))

    def _on_trailers(self, ev: Any, out: list[Event], now: float) -> None:
        stream = self._streams.get(ev.stream_id)
        if stream is None:
            return
        stream.ended_remote = True
        self._check_complete(stream)
        trailers = [(n.decode("latin-1").upper(), v.decode("latin-1"))
                    for n, v in ev.headers if n[:1] != b":"]
        out.append(BodyEnd(ev.stream_id, trailers))

    def _on_reset(self, ev: Any, out: list[Event], now: float) -> bool:
        # Resets by h2 itself (STREAM_CLOSED for DATA after the peer's END_STREAM) are the
        # peer's doing as much as its own RST_STREAM: "MadeYouReset" (CVE-2025-8671).
        code = int(ev.error_code or 0)
        self.metrics.reset("client" if ev.remote_reset else "server", code)
        sid = ev.stream_id
        if sid in self._fresh:
            # Opened and reset in one batch: the driver never hears of it.
            stream = self._remove_stream(sid)
            if stream is not None and stream.unacked:
                self._credit(sid, stream.unacked)
            self._dropped.add(sid)
        elif sid in self._streams:
            out.append(StreamGone(sid, code))
        return self._spend_reset(now, out)

    def _on_window(self, ev: Any, out: list[Event], now: float) -> None:
        out.append(WindowChanged())

    def _on_terminated(self, ev: Any, out: list[Event], now: float) -> bool:
        self.closed = True
        out.append(ConnectionGone(int(ev.error_code or 0), "GOAWAY from the peer"))
        return True
    # h2 event -> handler(self, event, out, now); True: the connection ended, stop here.
    _HANDLERS: Mapping[type[Any], Callable[[Session, Any, list[Event], float], bool | None]] = \
        MappingProxyType({
            h2.events.RequestReceived: _on_request,
            h2.events.DataReceived: _on_data,
            h2.events.StreamEnded: _on_stream_ended,
            h2.events.TrailersReceived: _on_trailers,
            h2.events.StreamReset: _on_reset,
            h2.events.WindowUpdated: _on_window,
            h2.events.RemoteSettingsChanged: _on_window,
            h2.events.ConnectionTerminated: _on_terminated,
        })

    def _spend_reset(self, now: float, out: list[Event]) -> bool:
        """Charge one reset; True when the connection was ended for resetting too fast."""
        if self._resets.spend(now):
            return False
        self._goaway(ErrorCodes.ENHANCE_YOUR_CALM)
        self.closed = True
        out.append(ConnectionGone(int(ErrorCodes.ENHANCE_YOUR_CALM), "stream reset rate"))
        return True

    # -- output -------------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Bytes to write to the peer, in order."""
        data = self._h2.data_to_send()
        if self._pending:
            data, self._pending = self._pending + data, b""
        return data

    def send_head(self, stream_id: int, status: int, headers: list[tuple[str, str]],
                  date: str, end: bool) -> None:
        """The response head: ``headers`` are validated, lower-case, without hop-by-hop and
        Server/Date (added here, as HTTP/1.1 responses have them)."""
        stream = self._live(stream_id)
        block = [(":status", str(status)), ("server", SERVER_SOFTWARE), ("date", date), *headers]
        self._h2.send_headers(stream_id, block, end_stream=end)
        stream.head_sent = True
        if end:
            stream.ended_local = True
            self._check_complete(stream)

    def send_informational(self, stream_id: int, status: int,
                           headers: list[tuple[str, str]]) -> None:
        """An interim response (103 Early Hints) before the final head."""
        stream = self._live(stream_id)
        if stream.head_sent:
            return
        self._h2.send_headers(stream_id, [(":status", str(status)), *headers])

    def window(self, stream_id: int) -> int:
        """Bytes :meth:`send_body` may send on the stream right now."""
        try:
            return self._h2.local_flow_control_window(stream_id)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            return 0

    def send_body(self, stream_id: int, data: bytes | memoryview, end: bool) -> int:
        """Send as much of ``data`` as the windows allow, in frames no larger than the peer's
        maximum. Returns the number of bytes taken; ``end`` applies only when all were."""
        self._live(stream_id)
        conn = self._h2
        total = len(data)
        size = conn.max_outbound_frame_size
        allowed = min(total, self.window(stream_id))
        view = memoryview(data)
        sent = 0
        while sent < allowed:
            n = min(size, allowed - sent)
            last = end and sent + n == total
            conn.send_data(stream_id, view[sent:sent + n].tobytes(), end_stream=last)
            sent += n
        if end and total == 0:
            conn.send_data(stream_id, b"", end_stream=True)
        if end and sent == total:
            stream = self._streams[stream_id]
            stream.ended_local = True
            self._check_complete(stream)
        return sent

    def end(self, stream_id: int, trailers: list[tuple[str, str]] | None = None) -> None:
        """End the response, with trailers (a HEADERS frame carrying END_STREAM) if given."""
        stream = self._live(stream_id)
        if stream.ended_local:
            return
        if trailers:
            self._h2.send_headers(stream_id, trailers, end_stream=True)
        else:
            self._h2.end_stream(stream_id)
        stream.ended_local = True
        self._check_complete(stream)

    def consumed(self, stream_id: int, size: int) -> None:
        """The application took ``size`` body bytes: give the peer that credit back."""
        stream = self._streams.get(stream_id)
        if stream is not None:
            size = min(size, stream.unacked)
            stream.unacked -= size
        if size > 0 and not self.closed:
            self._credit(stream_id, size)

    def finish(self, stream_id: int) -> None:
        """The application is done with the stream: free its slot, credit unread bytes, and
        reset it if the response was cut short (RFC 9113 §8.1: NO_ERROR when only the request
        body was left unread, so the client stops sending it)."""
        stream = self._remove_stream(stream_id)
        if stream is None or self.closed:
            return
        if stream.unacked:
            self._credit(stream_id, stream.unacked)
        try:
            open_remote = self._h2.streams.get(stream_id) is not None and \
                not self._h2.streams[stream_id].closed
        except KeyError:  # pragma: no cover - h2 forgot the stream
            open_remote = False
        if open_remote:
            self._reset(stream_id, ErrorCodes.NO_ERROR if stream.ended_local
                        else ErrorCodes.INTERNAL_ERROR)

    def reset(self, stream_id: int, code: int = ErrorCodes.INTERNAL_ERROR) -> None:
        self._reset(stream_id, code)

    def goaway(self) -> None:
        """Graceful stop: GOAWAY(NO_ERROR) naming the last stream we accepted; streams already
        accepted go on; new ones are refused."""
        if not self.going_away and not self.closed:
            self.going_away = True
            self._goaway(ErrorCodes.NO_ERROR)

    @property
    def active(self) -> int:
        """Streams whose application has not finished."""
        return len(self._streams)

    def inbound_window(self) -> int:
        """Request body bytes the peer may still send on the connection before we credit it
        (all its streams together)."""
        return self._h2.inbound_flow_control_window

    def discard(self) -> None:
        """The connection is closed and its driver done with the session: forget every stream
        and break h2's reference cycle (its frame dispatch table holds bound methods of the
        connection), so the connection's memory is freed at once, not by a later full garbage
        collection. Nothing may be called afterwards."""
        self.closed = True
        if self._streams:
            self.metrics.active.dec(len(self._streams))
            self._streams.clear()
            self._complete = 0
        self._h2._frame_dispatch_table.clear()

    # -- helpers ------------------------------------------------------------------------------

    def _live(self, stream_id: int) -> _Stream:
        stream = self._streams.get(stream_id)
        if stream is None or self.closed:
            raise StreamClosed(f"stream {stream_id} is closed")
        return stream

    def _answer(self, sid: int, status: int, reason: str) -> None:
        """Answer a request ourselves (4xx) without running the application."""
        from gunicorn.http.dates import http_date

        body = f"{status} {reason}\n".encode("latin-1")
        try:
            self._h2.send_headers(sid, [(":status", str(status)), ("server", SERVER_SOFTWARE),
                                        ("date", http_date()), ("content-type", "text/plain"),
                                        ("content-length", str(len(body)))])
            if self.window(sid) >= len(body):
                self._h2.send_data(sid, body, end_stream=True)
            else:
                self._h2.end_stream(sid)
            if not self._h2.streams[sid].closed:
                self._reset(sid, ErrorCodes.NO_ERROR)  # stop the body we will not read
        except (h2.exceptions.ProtocolError, KeyError):
            self._reset(sid, ErrorCodes.PROTOCOL_ERROR)

    def _reset(self, stream_id: int, code: int) -> None:
        try:
            self._h2.reset_stream(stream_id, code)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
            return  # already closed on both sides: nothing to reset
        self.metrics.reset("server", code)

    def _credit(self, stream_id: int, size: int) -> None:
        if size <= 0:
            return
        try:
            self._h2.acknowledge_received_data(size, stream_id)
        except (h2.exceptions.ProtocolError, ValueError):
            pass  # the connection is closing; credit no longer matters

    def _goaway(self, code: int) -> None:
        self.metrics.goaway(code)
        frame = GoAwayFrame(0)
        frame.last_stream_id = self._h2.highest_inbound_stream_id
        frame.error_code = code
        self._pending += self._h2.data_to_send() + frame.serialize()
