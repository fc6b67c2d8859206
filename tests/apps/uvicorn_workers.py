"""Third-party gunicorn workers as their users write them: the real uvicorn-worker package
(installed with --no-deps, so classic gunicorn stays out) and a subclass tuning uvicorn with
CONFIG_KWARGS, the common pattern."""

from uvicorn_worker import UvicornWorker


class TunedUvicornWorker(UvicornWorker):
    # No "server: uvicorn" header: the test sees these kwargs reached uvicorn's Config.
    CONFIG_KWARGS = {"loop": "asyncio", "http": "h11", "server_header": False}
