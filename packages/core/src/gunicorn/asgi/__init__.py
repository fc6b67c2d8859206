"""The ``asgi`` worker's protocol layer: ASGI 3 over the sans-IO HTTP/1.1 engine.

::

    workers/asgi.py   ASGIWorker: event loop, accept (worker_connections), heartbeat, signals,
                      graceful stop, lifespan
    asgi/context.py   WorkerContext: what every connection of one worker shares
    asgi/connection.py HTTPConnection: the asyncio.Protocol feeding RequestParser
    asgi/cycle.py     RequestCycle: one request/response, the app's receive() and send()
    asgi/scope.py     ScopeBuilder: http and websocket scopes
    asgi/lifespan.py  Lifespan: startup / shutdown events
    asgi/errors.py    the layer's errors (ClientDisconnected, LifespanFailure, ...)
    asgi/websocket.py WebSocketSession, entered from HTTPConnection on an upgrade; sans-IO
                      ws_handshake, ws_extensions, ws_codec + ws_deflate (wsproto),
                      ws_keepalive; asyncio ws_watchdog; ws_limits (per-worker settings)
"""
