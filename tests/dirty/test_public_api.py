import subprocess
import sys

import gunicorn.dirty
from gunicorn.dirty import errors

EXPECTED = [
    "DirtyActionNotFoundError",
    "DirtyApp",
    "DirtyAppError",
    "DirtyAppNotFoundError",
    "DirtyBusyError",
    "DirtyClient",
    "DirtyConnectionError",
    "DirtyError",
    "DirtyNoWorkersAvailableError",
    "DirtyProtocolError",
    "DirtySerializationError",
    "DirtyTimeoutError",
    "DirtyWorkerError",
    "StashError",
    "StashKeyNotFoundError",
    "StashTableNotFoundError",
    "StashTimeoutError",
    "StashUnavailableError",
    "batch",
    "close_dirty_client",
    "close_dirty_client_async",
    "get_dirty_client",
    "get_dirty_client_async",
    "stash",
]


def test_all_is_sorted_and_exact():
    assert gunicorn.dirty.__all__ == sorted(gunicorn.dirty.__all__) == EXPECTED


def test_every_public_name_resolves():
    for name in EXPECTED:
        assert getattr(gunicorn.dirty, name) is not None, name


def test_errors_are_the_same_objects_as_in_errors_module():
    for name in EXPECTED:
        if name.endswith("Error"):
            assert getattr(gunicorn.dirty, name) is getattr(errors, name)


def test_import_is_light():
    code = (
        "import sys, gunicorn.dirty\n"
        "heavy = [m for m in ('asyncio', 'concurrent.futures', 'msgpack', 'socket')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_unknown_attribute():
    try:
        gunicorn.dirty.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
