"""`gti serve`: an HTTP JSON API over a `Recommender` (FastAPI + uvicorn, the `gti[serve]` extra).

    GET  /health      {"status": "ok", "items": N, "requests": ..., "batches": ..., "max_batch": ...}
    POST /recommend   {"history": ["id", ...], "k": 10, "exclude_history": false, "user_id": optional}
                      -> {"items": [{"item_id", "title", "score"}, ...]} (plus "user_id" when given)
    GET  /docs        the OpenAPI page (the typed bodies of `gti.api`); /openapi.json its schema

Requests are checked on arrival: a body over `Limits.max_body_bytes` is a 413, a body that is not
a JSON object a 400, a bad or unknown field, a history over `Limits.max_history` items, a `k`
over `Limits.max_k` or an unknown item id a 422; each with a one-line message naming it. One
worker thread runs the model: it takes the first waiting request, gathers the others that arrive
within `max_wait_ms` (or until `max_batch`), and answers them with one batched beam search, so
concurrent clients share forward passes.
"""

import asyncio
import concurrent.futures
import contextlib
import queue
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gti.catalog import MAX_K, Request, check_request
from gti.errors import GtiError

if TYPE_CHECKING:
    from gti.recommend import Recommender


@dataclass(frozen=True)
class Limits:
    """How large a request `gti serve` accepts."""

    max_body_bytes: int = 65536
    max_history: int = 200
    max_k: int = 100

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1 or self.max_history < 1 or not 1 <= self.max_k <= MAX_K:
            raise GtiError(f"--max-body-bytes and --max-history must be positive and --max-k from 1 to {MAX_K}, got "
                           f"{self.max_body_bytes}, {self.max_history}, {self.max_k}")


class BodyTooLarge(Exception):
    """A request body over `Limits.max_body_bytes` (413)."""


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

    def __init__(self, recommender: "Recommender", max_batch: int = 8, max_wait_ms: float = 10.0):
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


def parse_request(recommender: "Recommender", body: bytes, limits: Limits = Limits()) -> tuple[Request, object]:
    """A `/recommend` body as a checked request and its optional user_id.

    Raises:
        ValueError: not a JSON object (400).
        GtiError: a missing, unknown or wrong field, a history or k over the limits, or an unknown item id (422).
    """
    from pydantic import ValidationError

    from gti.api import RecommendRequest, one_line

    try:
        data = RecommendRequest.model_validate_json(body)
    except ValidationError as error:
        status, message = one_line(error, limits.max_k)
        raise (ValueError if status == 400 else GtiError)(message) from None
    k = data.k if "k" in data.model_fields_set else min(data.k, limits.max_k)  # the default k fits any limit
    request = check_request(recommender.catalog, data.history, k, max_k=limits.max_k, max_history=limits.max_history)
    return Request(request.history, request.k, data.exclude_history), data.user_id


async def read_body(http, limit: int) -> bytes:
    """The request body, refused (BodyTooLarge) as soon as it is known to exceed `limit` bytes."""
    declared = http.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body has {int(declared):,} bytes, more than the limit of {limit:,} (gti serve --max-body-bytes)")
    body = bytearray()
    async for chunk in http.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(f"the body has more than {limit:,} bytes, the limit (gti serve --max-body-bytes)")
    return bytes(body)


def _openapi(app, request_model) -> None:
    """Make `app.openapi()` list `request_model` under components/schemas (the body is read by hand, to keep
    the one-line errors and the size limit, so FastAPI would not find it on its own)."""
    from fastapi.openapi.utils import get_openapi

    def schema() -> dict:
        if app.openapi_schema is None:
            built = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schemas = built.setdefault("components", {}).setdefault("schemas", {})
            body = request_model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(body.pop("$defs", {}))
            schemas[request_model.__name__] = body
            app.openapi_schema = built
        return app.openapi_schema

    app.openapi = schema


def _kind(spec: dict) -> str:
    """A schema's type in words: `string`, `array of string or integer`, a model's name for a `$ref`."""
    if "anyOf" in spec:
        return " or ".join(_kind(option) for option in spec["anyOf"])
    if "$ref" in spec:
        return spec["$ref"].rsplit("/", 1)[-1]
    if spec.get("type") == "array":
        return f"array of {_kind(spec.get('items', {}))}"
    return str(spec.get("type", "any"))


def _schema_rows(schema: dict, components: dict) -> list[tuple[str, str, bool, str]]:
    """(field, type, required, description) of an object schema, a `$ref` resolved."""
    if "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    required = set(schema.get("required", []))
    return [(field, _kind(spec), field in required, spec.get("description", ""))
            for field, spec in schema.get("properties", {}).items()]


def docs_page(openapi: dict) -> str:
    """The OpenAPI schema as a plain HTML page: every route, its body's and answers' fields, the status codes."""
    from html import escape

    components = openapi.get("components", {}).get("schemas", {})

    def table(schema: dict) -> str:
        rows = "".join(f"<tr><td><code>{escape(f)}</code></td><td>{escape(k)}</td><td>{'yes' if r else ''}</td>"
                       f"<td>{escape(d)}</td></tr>" for f, k, r, d in _schema_rows(schema, components))
        return f"<table><tr><th>field</th><th>type</th><th>required</th><th>meaning</th></tr>{rows}</table>" if rows else ""

    parts = [f"<h1>{escape(openapi['info']['title'])} <small>{escape(openapi['info'].get('version', ''))}</small></h1>",
             f"<p>{escape(openapi['info'].get('description', ''))}</p>",
             '<p>The machine-readable schema: <a href="/openapi.json">/openapi.json</a>.</p>']
    for path, operations in openapi.get("paths", {}).items():
        for verb, operation in operations.items():
            parts.append(f"<h2><code>{verb.upper()} {escape(path)}</code></h2><p>{escape(operation.get('description') or operation.get('summary', ''))}</p>")
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                parts.append("<h3>Body (JSON)</h3>" + table(body))
            for code, answer in operation.get("responses", {}).items():
                schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
                parts.append(f"<h3>{escape(code)}: {escape(answer.get('description', ''))}</h3>" + table(schema))
    parts.append("<h2>Types</h2>")
    for name, schema in components.items():
        parts.append(f"<h3><code>{escape(name)}</code></h3><p>{escape(schema.get('description', ''))}</p>" + table(schema))
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}")
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{escape(openapi['info']['title'])}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")


def create_app(recommender: "Recommender", max_batch: int = 8, max_wait_ms: float = 10.0, name: str = "gti",
               limits: Limits = Limits()):
    """The FastAPI application; its micro-batcher starts with the app and stops at shutdown."""
    require_server_packages()
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from starlette.requests import Request as HttpRequest

    from gti import __version__
    from gti.api import ErrorMessage, Health, RecommendRequest, RecommendResponse

    batcher = MicroBatcher(recommender, max_batch, max_wait_ms)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        await asyncio.to_thread(batcher.close)

    app = FastAPI(title=f"{name} recommendations", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Next-item recommendations from a gti model: trie-constrained beam search over the "
                              f"catalog's semantic ids. Limits: bodies up to {limits.max_body_bytes:,} bytes, histories "
                              f"up to {limits.max_history} items, k up to {limits.max_k}.")
    app.state.batcher = batcher
    _openapi(app, RecommendRequest)
    errors = {400: {"model": ErrorMessage, "description": "The body is not a JSON object."},
              413: {"model": ErrorMessage, "description": "The body is larger than the server's limit."},
              422: {"model": ErrorMessage, "description": "A missing, unknown or wrong field, or an unknown item id."},
              500: {"model": ErrorMessage, "description": "The model failed."}}
    body = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{RecommendRequest.__name__}"}}}}}

    @app.get("/docs", include_in_schema=False)
    async def docs():
        """The API documentation as one self-contained page (no script or stylesheet from a CDN: it works offline)."""
        from fastapi.responses import HTMLResponse

        return HTMLResponse(docs_page(app.openapi()))

    @app.get("/health", response_model=Health)
    async def health() -> dict:
        """The catalog size and how many requests and batches were served."""
        return {"status": "ok", "items": len(recommender.sids.item_ids), "requests": batcher.requests,
                "batches": batcher.batches, "max_batch": batcher.max_batch}

    @app.post("/recommend", response_model=RecommendResponse, response_model_exclude_none=True, responses=errors,
              openapi_extra=body)
    async def recommend(http: HttpRequest):
        """The top k catalog items for a history, best first (the same answer as `gti recommend --json`)."""
        try:
            request, user_id = parse_request(recommender, await read_body(http, limits.max_body_bytes), limits)
        except BodyTooLarge as error:
            return JSONResponse({"error": str(error)}, status_code=413)
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
          max_batch: int = 8, max_wait_ms: float = 10.0, limits: Limits = Limits()) -> None:
    """Load a run or exported folder and serve it until interrupted."""
    require_server_packages()
    import uvicorn

    from gti.recommend import load_recommender

    recommender = load_recommender(path, method, seed)
    app = create_app(recommender, max_batch, max_wait_ms, name=str(path), limits=limits)
    print(f"serving {path} ({len(recommender.sids.item_ids):,} items) on http://{host}:{port}: "
          f"GET /health, POST /recommend; API documentation at http://{host}:{port}/docs", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info")
