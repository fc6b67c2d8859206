"""A Starlette application with WebSocket endpoints (tests/core/test_asgi_websocket_serving.py)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.endpoints import WebSocketEndpoint
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


class Echo(WebSocketEndpoint):
    encoding = "text"

    async def on_receive(self, websocket: WebSocket, data: str) -> None:
        await websocket.send_text(f"echo: {data}")


async def json_sum(websocket: WebSocket) -> None:
    await websocket.accept(subprotocol="sum.v1" if "sum.v1" in websocket.scope["subprotocols"]
                           else None)
    try:
        while True:
            numbers = await websocket.receive_json()
            await websocket.send_json({"sum": sum(numbers)})
    except WebSocketDisconnect:
        pass


async def guarded(websocket: WebSocket) -> None:
    if websocket.query_params.get("token") != "ok":
        await websocket.close(code=1008)
        return
    await websocket.accept()
    await websocket.send_text("welcome")
    await websocket.close()


app = Starlette(routes=[WebSocketRoute("/echo", Echo), WebSocketRoute("/sum", json_sum),
                        WebSocketRoute("/guarded", guarded)])
