"""The WebSocket liveness clocks (Keepalive, WriteProgress) and the connection-slot count,
with explicit times."""

from __future__ import annotations

import dataclasses

import pytest
from gunicorn.asgi.ws_keepalive import Keepalive, KeepaliveAction, WriteProgress
from gunicorn.asgi.ws_limits import WebSocketLimits, default_max_connections
from gunicorn.config import Config

WAIT, PING, GONE = KeepaliveAction.WAIT, KeepaliveAction.PING, KeepaliveAction.GONE


def test_silent_peer_is_pinged_then_gone():
    clock = Keepalive(interval=20, timeout=5, now=100)
    assert clock.first_deadline() == 120
    assert clock.poll(110) == (WAIT, 120)
    assert clock.poll(120) == (PING, 125)
    first = clock.payload()
    assert clock.poll(124) == (WAIT, 125)
    assert clock.poll(125) == (GONE, None)
    assert len(first) == 4


def test_any_byte_answers_a_ping_and_restarts_the_quiet_interval():
    clock = Keepalive(interval=20, timeout=5, now=0)
    assert clock.poll(20) == (PING, 25)
    first = clock.payload()
    clock.seen(22)  # the pong, or any other frame
    assert clock.poll(25) == (WAIT, 42)
    assert clock.poll(42) == (PING, 47)
    assert clock.payload() != first
    clock.seen(42)  # answered within the clock's resolution
    assert clock.poll(47) == (WAIT, 62)


def test_traffic_postpones_the_ping():
    clock = Keepalive(interval=20, timeout=5, now=0)
    clock.seen(15)
    assert clock.poll(20) == (WAIT, 35)
    clock.seen(30)
    assert clock.poll(35) == (WAIT, 50)


def test_timeout_zero_pings_but_never_gives_up():
    clock = Keepalive(interval=10, timeout=0, now=0)
    assert clock.poll(10) == (PING, 20)
    assert clock.poll(20) == (PING, 30)
    assert clock.poll(1000) == (PING, 1010)


def test_write_progress_stalls_without_draining():
    watch = WriteProgress(timeout=8)
    assert watch.start(now=0, buffered=70_000) == 2
    assert watch.poll(2, 70_000) == 4
    assert watch.poll(4, 70_000) == 6
    assert watch.poll(6, 70_000) == 8
    assert watch.poll(8, 70_000) is None


def test_write_progress_restarts_with_every_drained_byte():
    watch = WriteProgress(timeout=8)
    watch.start(now=0, buffered=70_000)
    assert watch.poll(6, 69_999) == 8  # one byte left the buffer: the wait restarts at 6
    assert watch.poll(8, 80_000) == 10  # the buffer grew (more was written): no progress
    assert watch.poll(13, 80_000) == 14
    assert watch.poll(14, 80_000) is None


@pytest.mark.parametrize("slots,cap", [(1000, 900), (10, 9), (5, 4), (2, 1), (1, 1), (25, 23)])
def test_default_websocket_cap_leaves_slots_for_http(slots, cap):
    assert default_max_connections(slots) == cap


def test_limits_from_config_and_slot_count():
    cfg = Config()
    cfg.set("worker_connections", 10)
    limits = WebSocketLimits.from_config(cfg)
    assert (limits.max_connections, limits.ping_interval, limits.ping_timeout,
            limits.write_timeout, limits.per_message_deflate, limits.deflate_level) == \
        (9, 20.0, 20.0, 30.0, True, 1)
    cfg.set("websocket_max_connections", 2)
    limits = WebSocketLimits.from_config(cfg)
    assert [limits.acquire() for _ in range(3)] == [True, True, False]
    limits.release()
    assert limits.acquire()
    assert dataclasses.replace(limits, max_connections=5).acquire()
