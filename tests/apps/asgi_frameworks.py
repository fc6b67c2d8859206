"""Starlette and FastAPI applications for the asgi worker tests."""

import asyncio
import contextlib

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

DONE = []


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"started_by": "lifespan"}


async def home(request: Request):
    return PlainTextResponse("Hello from Starlette")


async def state(request: Request):
    return JSONResponse({"started_by": request.state.started_by,
                         "root_path": request.scope.get("root_path"),
                         "url": str(request.url)})


async def upload(request: Request):
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return JSONResponse({"size": size})


async def stream(request: Request):
    async def numbers():
        for i in range(5):
            yield f"{i}\n"
            await asyncio.sleep(0)
    return StreamingResponse(numbers(), media_type="text/plain")


async def background(request: Request):
    return PlainTextResponse("queued", background=BackgroundTask(DONE.append, "task ran"))


async def done(request: Request):
    return JSONResponse(DONE)


starlette_app = Starlette(lifespan=lifespan, routes=[
    Route("/", home), Route("/state", state), Route("/upload", upload, methods=["POST"]),
    Route("/stream", stream), Route("/background", background), Route("/done", done),
])


fastapi_app = FastAPI()


class Item(BaseModel):
    name: str
    price: float


@fastapi_app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q}


@fastapi_app.post("/items")
async def create_item(item: Item):
    return {"name": item.name, "double": item.price * 2}


@fastapi_app.get("/missing")
async def missing():
    raise HTTPException(status_code=404, detail="no such thing")


@fastapi_app.get("/crash")
async def crash():
    raise RuntimeError("fastapi-internal-detail")
