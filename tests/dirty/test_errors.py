import inspect
import pickle

import pytest
from gunicorn.dirty import codec, errors
from gunicorn.dirty.errors import (
    ERROR_CLASSES,
    DirtyActionNotFoundError,
    DirtyAppError,
    DirtyAppNotFoundError,
    DirtyBusyError,
    DirtyConnectionError,
    DirtyError,
    DirtyNoWorkersAvailableError,
    DirtyProtocolError,
    DirtySerializationError,
    DirtyTimeoutError,
    DirtyWorkerError,
    ErrorCode,
    StashError,
    StashKeyNotFoundError,
    StashTableNotFoundError,
    StashTimeoutError,
    StashUnavailableError,
    error_from_payload,
)
from gunicorn.errors import GunicornError

SAMPLES = [
    DirtyError("plain"),
    DirtyTimeoutError("took too long", timeout=2.5),
    DirtyConnectionError("gone", socket_path="/tmp/x/arbiter.sock"),
    DirtyWorkerError("worker died", worker_id=1234),
    DirtyAppError("boom", "m:App", "predict", "ValueError", "Traceback (most recent call last)"),
    DirtyAppNotFoundError("m:Missing"),
    DirtyActionNotFoundError("m:App", "_secret"),
    DirtyNoWorkersAvailableError("m:App"),
    DirtyBusyError("m:App", 100),
    DirtyProtocolError("bad magic"),
    DirtySerializationError("set"),
    StashError("stash broke"),
    StashTableNotFoundError("sessions"),
    StashKeyNotFoundError("sessions", "user:1"),
    StashUnavailableError("Redis is down", address="redis://10.0.0.5:6379/0"),
    StashTimeoutError("Redis is slow", address="unix:///run/redis.sock?db=0", timeout=1.5),
]


def all_error_classes() -> list[type[DirtyError]]:
    return [
        obj
        for obj in vars(errors).values()
        if inspect.isclass(obj) and issubclass(obj, DirtyError)
    ]


def test_every_class_is_registered_under_a_unique_code():
    classes = all_error_classes()
    assert sorted(ERROR_CLASSES.values(), key=lambda c: c.code) == sorted(
        classes, key=lambda c: c.code
    )
    assert len({cls.code for cls in classes}) == len(classes)
    assert {cls.code for cls in classes} == set(ErrorCode)


def test_samples_cover_every_class():
    assert {type(e) for e in SAMPLES} == set(all_error_classes())


@pytest.mark.parametrize("err", SAMPLES, ids=lambda e: type(e).__name__)
def test_round_trip_keeps_class_message_and_fields(err):
    frame_bytes = codec.encode_error(7, err)
    decoder = codec.FrameDecoder()
    decoder.feed(frame_bytes)
    frame = decoder.next_frame()
    rebuilt = error_from_payload(frame.payload()["error"])
    assert type(rebuilt) is type(err)
    assert rebuilt.message == err.message
    assert str(rebuilt) == str(err)
    for name in type(err).fields:
        assert getattr(rebuilt, name) == getattr(err, name)


@pytest.mark.parametrize("err", SAMPLES, ids=lambda e: type(e).__name__)
def test_pickle_round_trip(err):
    rebuilt = pickle.loads(pickle.dumps(err))
    assert type(rebuilt) is type(err) and str(rebuilt) == str(err)


def test_hierarchy():
    assert issubclass(DirtyError, GunicornError)
    assert issubclass(DirtyAppNotFoundError, DirtyAppError)
    assert issubclass(DirtyActionNotFoundError, DirtyAppError)
    assert issubclass(StashTableNotFoundError, StashError)
    assert issubclass(StashKeyNotFoundError, StashError)
    assert issubclass(StashKeyNotFoundError, KeyError)
    assert issubclass(DirtySerializationError, TypeError)
    assert not issubclass(DirtyBusyError, DirtyNoWorkersAvailableError)


def test_stash_key_error_is_caught_as_key_error_with_readable_str():
    with pytest.raises(KeyError) as info:
        raise error_from_payload(StashKeyNotFoundError("t", "k").to_payload())
    assert str(info.value) == "key 'k' not found in stash table t"


def test_readable_strings():
    app = DirtyAppError("division by zero", "m:App", "div", "ZeroDivisionError")
    assert str(app) == "ZeroDivisionError: division by zero (in m:App.div)"
    assert "m:Missing" in str(DirtyAppNotFoundError("m:Missing"))
    assert "/s.sock" in str(DirtyConnectionError("refused", socket_path="/s.sock"))
    assert "set" in str(DirtySerializationError("set"))
    assert "busy" in str(DirtyBusyError("m:App", 3))


def test_unknown_code_gives_dirty_error_with_message():
    err = error_from_payload({"code": 9999, "type": "FutureError", "message": "new", "fields": {}})
    assert type(err) is DirtyError and err.message == "new"


@pytest.mark.parametrize(
    "payload",
    [None, "text", 3, [], {}, {"code": 1}, {"message": 5}, {"code": [1], "message": "x"}],
    ids=repr,
)
def test_malformed_payload_gives_protocol_error(payload):
    err = error_from_payload(payload)
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        assert type(err) is DirtyError
    else:
        assert isinstance(err, DirtyProtocolError)


def test_missing_fields_become_none():
    err = error_from_payload({"code": int(ErrorCode.BUSY), "message": "busy"})
    assert type(err) is DirtyBusyError and err.app_path is None and err.limit is None


def test_user_subclass_travels_as_nearest_registered_ancestor():
    class QuotaExceeded(DirtyAppError):
        pass

    rebuilt = error_from_payload(QuotaExceeded("over quota", "m:App").to_payload())
    assert type(rebuilt) is DirtyAppError and rebuilt.app_path == "m:App"


def test_unpackable_field_does_not_lose_the_error():
    data = codec.encode_error(1, StashKeyNotFoundError("t", frozenset({1})))
    decoder = codec.FrameDecoder()
    decoder.feed(data)
    rebuilt = error_from_payload(decoder.next_frame().payload()["error"])
    assert type(rebuilt) is StashKeyNotFoundError and rebuilt.key == "frozenset({1})"
