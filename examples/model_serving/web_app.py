"""The web side of the model-serving example (FastAPI on gunicorn's asyncio worker).

    POST /embed {"text": "..."}          {"vector": [...]}: one text per request; the dirty
                                         worker batches concurrent requests together
    GET  /chat?session=ID&prompt=...     text/event-stream: "token" events, then "done"; the
                                         turn is appended to the session in the stash
    GET  /sessions/ID                    the conversation so far
    GET  /model                          which worker and GPU token answered, batch counters

The HTTP workers never load the model: every call goes to a dirty worker through the dirty
arbiter, and the session lives in the stash, so any HTTP worker can continue any conversation.
"""

import json

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import StreamingResponse
from gunicorn.dirty import DirtyBusyError, DirtyError, get_dirty_client_async, stash
from pydantic import BaseModel, Field

MODEL = "model_app:TinyModel"
SESSION_TTL = 3600
HISTORY = 20  # turns kept per session

app = FastAPI(title="gunicorn-dirty model serving example")


class EmbedRequest(BaseModel):
    text: str = Field(min_length=1, max_length=10_000)


@app.post("/embed")
async def embed(request: EmbedRequest) -> dict:
    client = await get_dirty_client_async()
    try:
        vector = await client.call_async(MODEL, "embed", (request.text,), timeout=10)
    except DirtyBusyError as exc:  # the dirty queue is full: tell the client to come back
        raise HTTPException(503, "the model is busy") from exc
    return {"vector": vector}


class EventStreamResponse(StreamingResponse):
    """Closes its body iterator however the response ends, which cancels the dirty stream
    when the browser leaves (see docs/streaming.md)."""

    media_type = "text/event-stream"

    async def stream_response(self, send) -> None:
        try:
            await super().stream_response(send)
        finally:
            await self.body_iterator.aclose()


def sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


@app.get("/chat")
async def chat(session: str = Query(min_length=1, max_length=64, pattern=r"^[\w-]+$"),
               prompt: str = Query(min_length=1, max_length=2000),
               max_tokens: int = Query(20, ge=1, le=500)) -> EventStreamResponse:
    client = await get_dirty_client_async()
    history = await stash.aget("sessions", session, [])
    # The model continues the conversation: its last answer is part of the context.
    context = " ".join([history[-1]["answer"], prompt] if history else [prompt])

    async def events():
        tokens = []
        try:
            async with client.call_stream_async(MODEL, "generate", [context, max_tokens],
                                                timeout=30, total_timeout=300) as stream:
                async for token in stream:
                    tokens.append(token)
                    yield sse("token", token)
        except DirtyError as exc:
            yield sse("error", {"error": type(exc).__name__, "message": str(exc)})
            return
        turn = {"prompt": prompt, "answer": " ".join(tokens)}
        await stash.aput("sessions", session, [*history, turn][-HISTORY:], ttl=SESSION_TTL)
        yield sse("done", {"tokens": len(tokens)})

    return EventStreamResponse(events(), headers={"Cache-Control": "no-cache",
                                                  "X-Accel-Buffering": "no"})


@app.get("/sessions/{session}")
async def history(session: str) -> dict:
    return {"session": session, "turns": await stash.aget("sessions", session, [])}


@app.get("/model")
async def model() -> dict:
    client = await get_dirty_client_async()
    return await client.execute_async(MODEL, "info")
