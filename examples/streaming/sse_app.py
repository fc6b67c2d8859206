"""A FastAPI app serving tokens from a dirty app as Server-Sent Events.

    GET /                               a page that shows the stream as it arrives
    GET /chat?prompt=...&max_tokens=N   text/event-stream: one "token" event per token, then
                                        "done" (or "error" if the model failed mid-stream)

The HTTP worker (`-k asgi`) stays light: the model lives in a dirty worker (chat_app.ChatApp)
and every token crosses the dirty arbiter as soon as the model produced it. When the browser
goes away, the asgi worker cancels this request's task; leaving the `async with` block then
cancels the dirty stream, so the model stops generating for nobody.
"""

import json

from fastapi import FastAPI, Query
from fastapi.responses import HTMLResponse, StreamingResponse
from gunicorn.dirty import DirtyError, get_dirty_client_async

MODEL = "chat_app:ChatApp"

app = FastAPI(title="gunicorn-dirty streaming example")


class EventStreamResponse(StreamingResponse):
    """A StreamingResponse that closes its body iterator however the response ends.

    Starlette stops iterating when ``send()`` fails because the client left (ASGI 2.4), but
    leaves the async generator suspended until the garbage collector finds it; closing it here
    cancels the dirty stream at once instead of letting the model generate for nobody.
    """

    media_type = "text/event-stream"

    async def stream_response(self, send) -> None:
        try:
            await super().stream_response(send)
        finally:
            await self.body_iterator.aclose()


def sse(event: str, data: object) -> str:
    """One Server-Sent Event (https://html.spec.whatwg.org/multipage/server-sent-events.html)."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


@app.get("/chat")
async def chat(prompt: str = Query(min_length=1, max_length=2000),
               max_tokens: int = Query(20, ge=1, le=500),
               delay: float = Query(0.05, ge=0, le=5)) -> EventStreamResponse:
    client = await get_dirty_client_async()

    async def events():
        count = 0
        # timeout bounds the wait for each token, total_timeout the whole answer.
        stream = client.call_stream_async(MODEL, "generate", [prompt, max_tokens, delay],
                                          timeout=30, total_timeout=300)
        async with stream:
            try:
                async for token in stream:
                    count += 1
                    yield sse("token", token)
            except DirtyError as exc:
                yield sse("error", {"error": type(exc).__name__, "message": str(exc)})
                return
        yield sse("done", {"tokens": count})

    # no-cache and no proxy buffering: each event must reach the browser when it is sent.
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return EventStreamResponse(events(), headers=headers)


PAGE = """<!doctype html>
<meta charset="utf-8"><title>dirty streaming</title>
<form id="f"><input id="p" value="the dirty worker" size="40"> <button>ask</button></form>
<p id="out"></p>
<script>
document.getElementById("f").onsubmit = (e) => {
  e.preventDefault();
  const out = document.getElementById("out");
  out.textContent = "";
  const url = "/chat?max_tokens=40&prompt=" + encodeURIComponent(document.getElementById("p").value);
  const source = new EventSource(url);
  source.addEventListener("token", (ev) => { out.textContent += JSON.parse(ev.data) + " "; });
  source.addEventListener("done", () => source.close());
  source.addEventListener("error", () => source.close());
};
</script>
"""


@app.get("/", response_class=HTMLResponse)
async def index() -> str:
    return PAGE
