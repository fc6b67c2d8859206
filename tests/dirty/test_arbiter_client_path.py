"""The dirty arbiter's client read/dispatch/reply path, spoken to over a raw Unix socket:
frames whole, pipelined in one write and byte by byte; bad STASH and REQUEST bodies."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from conftest import ECHO, DirtyServer, dirty_server
from gunicorn.dirty import codec
from gunicorn.dirty.codec import FrameDecoder, MessageType
from gunicorn.dirty.errors import (
    DirtyProtocolError,
    StashKeyNotFoundError,
    error_from_payload,
)


@pytest.fixture(scope="module")
def server() -> Iterator[DirtyServer]:
    with dirty_server("--dirty-app", ECHO, "--dirty-workers", "1") as srv:
        yield srv


class Raw:
    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(path)
        self.decoder = FrameDecoder()

    def replies(self, n: int) -> list[codec.Frame]:
        frames: list[codec.Frame] = []
        deadline = time.monotonic() + 5
        while len(frames) < n and time.monotonic() < deadline:
            data = self.sock.recv(65536)
            if not data:
                break
            self.decoder.feed(data)
            frames.extend(self.decoder)
        return frames

    def closed_by_peer(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


def stash(rid: int, **payload: object) -> bytes:
    return codec.encode_frame(MessageType.STASH, rid, payload)


def test_pipelined_frames_in_one_write_are_answered_in_order(server):
    raw = Raw(server.socket_path())
    raw.sock.sendall(stash(1, op="put", table="p", key="k", value=b"v")
                     + stash(2, op="get", table="p", key="k")
                     + codec.encode_request(3, ECHO, "echo", ["e"])
                     + stash(4, op="get", table="p", key="missing"))
    replies = {f.request_id: f for f in raw.replies(4)}
    assert replies[1].payload() == {"result": True}
    assert replies[2].payload() == {"result": b"v"}
    assert replies[3].payload() == {"result": "e"}
    assert replies[4].type is MessageType.ERROR
    assert isinstance(error_from_payload(replies[4].payload()["error"]), StashKeyNotFoundError)


def test_frames_written_byte_by_byte(server):
    raw = Raw(server.socket_path())
    data = stash(7, op="put", table="b", key=1, value=[1, 2]) + stash(8, op="get", table="b", key=1)
    for i in range(len(data)):
        raw.sock.send(data[i : i + 1])
    got = raw.replies(2)
    assert [(f.request_id, f.payload()) for f in got] == [(7, {"result": True}),
                                                         (8, {"result": [1, 2]})]


@pytest.mark.parametrize("body", [b"\x01", b"\xc1"], ids=["not-a-map", "invalid-msgpack"])
def test_bad_stash_body_is_an_error_reply_and_the_connection_stays(server, body):
    raw = Raw(server.socket_path())
    raw.sock.sendall(codec.encode_raw(MessageType.STASH, 5, body))
    [reply] = raw.replies(1)
    assert reply.type is MessageType.ERROR and reply.request_id == 5
    assert isinstance(error_from_payload(reply.payload()["error"]), DirtyProtocolError)
    raw.sock.sendall(stash(6, op="tables"))
    [again] = raw.replies(1)
    assert again.request_id == 6 and again.type is MessageType.RESPONSE


def test_undecodable_request_body_closes_the_connection(server):
    raw = Raw(server.socket_path())
    raw.sock.sendall(codec.encode_raw(MessageType.REQUEST, 1, b"\xc1"))
    assert raw.closed_by_peer()
    with server.client() as client:
        assert client.execute(ECHO, "echo", "still serving") == "still serving"
