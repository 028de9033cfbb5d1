"""`gti serve`: an HTTP JSON API over a `Recommender` (FastAPI + uvicorn, the `gti[serve]` extra).

    GET  /health      {"status": "ok", "items": N, "requests": ..., "batches": ..., "max_batch": ...}
    POST /recommend   {"history": ["id", ...], "k": 10, "exclude_history": false, "user_id": optional}
                      -> {"items": [{"item_id", "title", "score"}, ...]} (plus "user_id" when given)

Requests are checked on arrival (bad JSON or fields: 400/422 with a one-line message naming the
field or the unknown id). One worker thread runs the model: it takes the first waiting request,
gathers the others that arrive within `max_wait_ms` (or until `max_batch`), and answers them
with one batched beam search, so concurrent clients share forward passes.
"""

import asyncio
import concurrent.futures
import contextlib
import json
import queue
import socket
import threading
import time

from gti.errors import GtiError
from gti.recommend import Recommender, Request

REQUEST_KEYS = ("history", "k", "exclude_history", "user_id")


def require_server_packages() -> None:
    """Raise a one-line GtiError when FastAPI or uvicorn is missing."""
    import importlib.util

    missing = [name for name in ("fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        raise GtiError(f"gti serve needs {' and '.join(missing)}: pip install 'gti[serve]'")


class MicroBatcher:
    """One worker thread that answers queued requests in batches.

    Args:
        recommender: what answers a batch (`Recommender.run`).
        max_batch: most requests per batch.
        max_wait_ms: how long the worker waits for more requests after the first of a batch.
    """

    def __init__(self, recommender: Recommender, max_batch: int = 8, max_wait_ms: float = 10.0):
        if max_batch < 1 or max_wait_ms < 0:
            raise GtiError(f"max_batch must be positive and max_wait_ms not negative, got {max_batch}, {max_wait_ms}")
        self.recommender = recommender
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.requests = 0
        self.batches = 0
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="gti-model", daemon=True)
        self._thread.start()

    def submit(self, request: Request) -> concurrent.futures.Future:
        """Queue a checked request; the future resolves to its list of items."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((request, future))
        return future

    def _gather(self, first) -> list:
        batch = [first]
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            try:
                entry = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if entry is None:  # closing: answer this batch, then stop
                self._queue.put(None)
                break
            batch.append(entry)
        return batch

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [entry for entry in self._gather(first) if entry[1].set_running_or_notify_cancel()]
            if not batch:
                continue
            try:
                answers = self.recommender.run([request for request, _ in batch], batch_size=len(batch))
            except Exception as error:  # the model failed: every waiting client hears about it
                for _, future in batch:
                    future.set_exception(error)
                continue
            self.requests += len(batch)
            self.batches += 1
            for (_, future), items in zip(batch, answers):
                future.set_result(items)

    def close(self) -> None:
        """Answer what is queued, then stop the worker."""
        self._queue.put(None)
        self._thread.join()


def parse_request(recommender: Recommender, body: bytes) -> tuple[Request, object]:
    """A `/recommend` body as a checked request and its optional user_id.

    Raises:
        ValueError: not a JSON object (400).
        GtiError: a missing, unknown or wrong field, or an unknown item id (422).
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise ValueError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    unknown = [key for key in data if key not in REQUEST_KEYS]
    if unknown:
        raise GtiError(f"unknown field {unknown[0]!r}; expected {', '.join(REQUEST_KEYS)}")
    if "history" not in data:
        raise GtiError("missing field 'history'")
    exclude = data.get("exclude_history", False)
    if not isinstance(exclude, bool):
        raise GtiError(f"exclude_history: expected true or false, got {exclude!r}")
    request = recommender.check(data["history"], data.get("k", 10))
    return Request(request.history, request.k, exclude), data.get("user_id")


def create_app(recommender: Recommender, max_batch: int = 8, max_wait_ms: float = 10.0, name: str = "gti"):
    """The FastAPI application; its micro-batcher starts with the app and stops at shutdown."""
    require_server_packages()
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from starlette.requests import Request as HttpRequest

    batcher = MicroBatcher(recommender, max_batch, max_wait_ms)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        await asyncio.to_thread(batcher.close)

    app = FastAPI(title=f"{name} recommendations", lifespan=lifespan)
    app.state.batcher = batcher

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "items": len(recommender.sids.item_ids), "requests": batcher.requests,
                "batches": batcher.batches, "max_batch": batcher.max_batch}

    @app.post("/recommend")
    async def recommend(http: HttpRequest):
        try:
            request, user_id = parse_request(recommender, await http.body())
        except ValueError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        except GtiError as error:
            return JSONResponse({"error": str(error)}, status_code=422)
        try:
            items = await asyncio.wrap_future(batcher.submit(request))
        except Exception as error:  # noqa: BLE001 - reported to the client, the server keeps running
            return JSONResponse({"error": f"the model failed: {type(error).__name__}: {error}"}, status_code=500)
        answer = {"items": items}
        if user_id is not None:
            answer["user_id"] = user_id
        return answer

    return app


class BackgroundServer:
    """uvicorn serving `app` from a thread on an already bound socket (port 0: a free one); for tests and benchmarks.

    Use as a context manager; `url` is e.g. `http://127.0.0.1:40123`.
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        import uvicorn

        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port))
        self.url = f"http://{host}:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self) -> "BackgroundServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise GtiError(f"the test server at {self.url} did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()


def serve(path: str, method: str = "gti", seed: int | None = None, host: str = "127.0.0.1", port: int = 8000,
          max_batch: int = 8, max_wait_ms: float = 10.0) -> None:
    """Load a run or exported folder and serve it until interrupted."""
    require_server_packages()
    import uvicorn

    from gti.recommend import load_recommender

    recommender = load_recommender(path, method, seed)
    app = create_app(recommender, max_batch, max_wait_ms, name=str(path))
    print(f"serving {path} ({len(recommender.sids.item_ids):,} items) on http://{host}:{port}: "
          "GET /health, POST /recommend", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info")
