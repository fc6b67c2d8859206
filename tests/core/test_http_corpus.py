"""The request corpus, fed whole, byte by byte and in random splits."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

from gunicorn.http import errors  # noqa: E402
from gunicorn.http.events import NEED_DATA, Data, EndOfMessage, Request  # noqa: E402
from gunicorn.http.options import ParserOptions  # noqa: E402
from gunicorn.http.parser import RequestParser  # noqa: E402
from http_corpus import invalid, valid  # noqa: E402

SPLITS = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))


def make_parser(case) -> RequestParser:
    return RequestParser(ParserOptions.build(**case.options), **case.parser)


def drive(parser: RequestParser, chunks, *, eof: bool, max_data: int | None = None,
          done: list | None = None) -> list[tuple[Request, bytes, list]]:
    """Feed ``chunks``; return (and append to ``done``) the completed requests as
    (Request, body, trailers)."""
    done = [] if done is None else done
    current: list = []

    def drain() -> None:
        while True:
            event = parser.next_event(max_data)
            if event is NEED_DATA:
                return
            if type(event) is Request:
                assert not current
                current[:] = [event, bytearray()]
            elif type(event) is Data:
                assert event.data
                if max_data:
                    assert len(event.data) <= max_data
                current[1] += event.data
            else:
                assert type(event) is EndOfMessage
                done.append((current[0], bytes(current[1]), event.trailers))
                current.clear()

    for chunk in chunks:
        parser.feed(chunk)
        drain()
    if eof:
        parser.feed(b"")
        drain()
    return done


def byte_chunks(raw: bytes) -> list[bytes]:
    return [raw[i:i + 1] for i in range(len(raw))]


def split_at(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(raw), *cuts})
    return [raw[a:b] for a, b in zip(points, points[1:], strict=False)]


def check_valid(case, chunks, max_data=None) -> None:
    parser = make_parser(case)
    done = drive(parser, chunks, eof=False, max_data=max_data)
    assert len(done) == len(case.expect)
    for (request, body, trailers), expect in zip(done, case.expect, strict=True):
        for key, wanted in expect.items():
            if key == "body":
                assert body == wanted
            elif key == "trailers":
                assert trailers == wanted
            elif key == "proxy" and wanted is not None:
                assert dataclasses.astuple(request.proxy) == wanted
            else:
                assert getattr(request, key) == wanted, key
    assert parser.trailing_data() == b""
    # The client closing an idle connection owes it no response.
    parser.feed(b"")
    with pytest.raises(errors.IncompleteRequest) as info:
        parser.next_event()
    assert info.value.received == 0


def check_invalid(case, chunks) -> None:
    parser = make_parser(case)
    done: list = []
    with pytest.raises(errors.RequestError) as info:
        drive(parser, chunks, eof=case.eof, done=done)
    error = info.value
    assert type(error).__name__ == case.error, str(error)
    assert error.status == case.status
    assert len(done) == case.before
    # Terminal: later calls re-raise, whatever is fed.
    parser.feed(b"GET / HTTP/1.1\r\n\r\n")
    with pytest.raises(type(error)):
        parser.next_event()


VALID = pytest.mark.parametrize("case", valid.CASES, ids=[c.id for c in valid.CASES])
INVALID = pytest.mark.parametrize("case", invalid.CASES, ids=[c.id for c in invalid.CASES])


def test_corpus_is_big_enough_and_ids_unique():
    assert len(valid.CASES) >= 60 and len(invalid.CASES) >= 80
    ids = [c.id for c in valid.CASES + invalid.CASES]
    assert len(ids) == len(set(ids))


@VALID
def test_valid_whole(case):
    check_valid(case, [case.raw])


@VALID
def test_valid_byte_by_byte(case):
    check_valid(case, byte_chunks(case.raw))


@VALID
def test_valid_small_data_events(case):
    check_valid(case, [case.raw], max_data=3)


@VALID
@SPLITS
@given(data=st.data())
def test_valid_random_splits(case, data):
    cuts = data.draw(st.lists(st.integers(0, len(case.raw)), max_size=12))
    check_valid(case, split_at(case.raw, cuts))


@INVALID
def test_invalid_whole(case):
    check_invalid(case, [case.raw])


@INVALID
def test_invalid_byte_by_byte(case):
    check_invalid(case, byte_chunks(case.raw))


@INVALID
@SPLITS
@given(data=st.data())
def test_invalid_random_splits(case, data):
    cuts = data.draw(st.lists(st.integers(0, len(case.raw)), max_size=12))
    check_invalid(case, split_at(case.raw, cuts))


def test_valid_corpus_pipelined_as_one_stream():
    """Every default-option case, back to back on one connection, in random-ish chunks."""
    cases = [c for c in valid.CASES if not c.options and not c.parser]
    stream = b"".join(c.raw for c in cases)
    expected = [e for c in cases for e in c.expect]
    for chunks in ([stream], split_at(stream, list(range(0, len(stream), 7)))):
        done = drive(RequestParser(ParserOptions()), chunks, eof=False)
        assert len(done) == len(expected)
        for (request, body, _), expect in zip(done, expected, strict=True):
            if "path" in expect:
                assert request.path == expect["path"]
            if "body" in expect:
                assert body == expect["body"]
