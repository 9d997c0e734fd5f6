"""The HTTP API and the page: :func:`create_app` builds the FastAPI app over one
:class:`~coversearch.serve.holder.IndexHolder`.

Light requests (query by id, catalogue search, item, profile, index info)
run on the event loop: each is a FAISS search plus a few table lookups.
Heavy ones (uploads, re-rank) go to the bounded
:class:`~coversearch.serve.pool.HeavyPool`. Every request reads
``holder.current`` once, so it is answered from one index even if a reload
swaps the reference meanwhile; the index served is named in the
``X-Coversearch-Index`` header (the manifest's hash).

Status codes: 400 bad option, 404 unknown id (with ``suggestions``), 409 index
built by another model, 411 upload without Content-Length, 413 upload too
big, 415 unsupported type, 422 undecodable file or bad parameter, 503 (with
``Retry-After``) heavy pool full or no index loadable.
"""

# no `from __future__ import annotations`: FastAPI reads these signatures at runtime

import asyncio
import contextlib
import logging
import time
from importlib import resources
from pathlib import Path
from typing import Optional

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from coversearch import api
from coversearch.errors import ConfigError, CoversearchError, DataError, IndexMismatchError, UnknownIdError
from coversearch.serve.config import ServeConfig
from coversearch.serve.holder import IndexHolder, Snapshot
from coversearch.serve.pool import HeavyPool, PoolFull
from coversearch.serve.profile import distance_profile
from coversearch.serve.uploads import (
    UnsupportedType, UploadTooLarge, audio_extensions, private_folder, remove_folder, save_private,
)

log = logging.getLogger("coversearch.serve")

STATUS = {UnknownIdError: 404, DataError: 422, ConfigError: 400, IndexMismatchError: 409}
UPLOAD_PATHS = ("/api/query/file", "/api/compare/file")
# multipart framing (boundaries, part headers) on top of the file itself
MULTIPART_SLACK = 64 * 1024


def static_dir() -> Path:
    """The page's files (package data: plain HTML, CSS and JS, no build step)."""
    return Path(str(resources.files("coversearch.serve").joinpath("static")))


try:  # a tenth of the stdlib encoder's time on a query answer (the serve extra installs it)
    import orjson

    def dumps(data) -> bytes:
        """Compact UTF-8 JSON, as JSONResponse writes it."""
        return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)
except ImportError:  # pragma: no cover - without the serve extra's orjson
    import json as _stdlib_json

    def dumps(data) -> bytes:
        """Compact UTF-8 JSON, as JSONResponse writes it."""
        return _stdlib_json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _json(data, snap: Optional[Snapshot] = None, status: int = 200, headers: Optional[dict] = None) -> Response:
    h = dict(headers or {})
    if snap is not None:
        h["X-Coversearch-Index"] = snap.version
    return Response(dumps(data), status_code=status, headers=h, media_type="application/json")


def _error(status: int, detail: str, **extra) -> Response:
    return Response(dumps({"detail": detail, **extra}), status_code=status, media_type="application/json")


def _status_of(e: CoversearchError) -> int:
    return next((s for cls, s in STATUS.items() if isinstance(e, cls)), 400)


class HotQueryById:
    """ASGI middleware: answer ``GET /api/query/{id}`` (without re-rank) before FastAPI's routing.

    The hottest route spends more CPU in the framework (route matching,
    dependency solving, response classes: ~0.4 ms) than in its FAISS search
    (profiled under 32 clients), so it is answered here by the same function
    the FastAPI route calls (:func:`answer_query_id`); a re-rank query, or any
    other path, goes on to FastAPI (the route stays, for the OpenAPI docs and
    the heavy pool).
    """

    PREFIX = "/api/query/"

    def __init__(self, app, answer) -> None:
        self.app = app
        self.answer = answer

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"].startswith(self.PREFIX):
            perf_id = scope["path"][len(self.PREFIX):]
            if perf_id and "/" not in perf_id:
                from urllib.parse import parse_qsl

                qp = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
                answer = self.answer(perf_id, qp)
                if answer is not None:
                    status, body, headers = answer
                    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
                    await send({"type": "http.response.start", "status": status, "headers": raw})
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)


class UploadLimit:
    """ASGI middleware: refuse an upload by its Content-Length before its body is read.

    uvicorn (h11/httptools) rejects a body longer than its Content-Length, so
    checking the header bounds what is read; a chunked upload (no length) is
    refused with 411.
    """

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in UPLOAD_PATHS:
            length = dict(scope["headers"]).get(b"content-length")
            if length is None or not length.isdigit():
                resp = _error(411, "an upload needs a Content-Length header")
            elif int(length) > self.limit + MULTIPART_SLACK:
                resp = _error(413, f"upload of {int(length) / 1048576:.1f} MB is larger than the "
                                   f"{self.limit / 1048576:.0f} MB limit")
            else:
                resp = None
            if resp is not None:
                await resp(scope, receive, send)
                return
        await self.app(scope, receive, send)


QUERY_PARAMS = [
    {"name": "k", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 10},
     "description": "how many results (at most the server's --max-k)"},
    {"name": "rerank", "in": "query", "schema": {"type": "boolean", "default": False},
     "description": "re-order the cosine shortlist by alignment (heavy: runs in the bounded pool)"},
    {"name": "shortlist", "in": "query", "schema": {"type": "integer", "minimum": 1},
     "description": "with rerank: how many cosine neighbours are eligible (K1; default: the index's rerank.json, 2% of the catalogue, at least 200)"},
    {"name": "profile", "in": "query", "schema": {"type": "boolean", "default": False},
     "description": "add `profile`: the distances of the query's versions and a histogram of the rest"},
]
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off", ""}


def _query_params(qp) -> tuple:
    """(k, rerank, shortlist, profile) from a query string; ValueError names the bad one."""
    def integer(name, default):
        v = qp.get(name)
        if v is None:
            return default
        try:
            n = int(v)
        except ValueError:
            raise ValueError(f"{name} must be an integer, got {v!r}") from None
        if n < 1:
            raise ValueError(f"{name} must be >= 1, got {n}")
        return n

    def boolean(name):
        v = (qp.get(name) or "").lower()
        if v not in _TRUE | _FALSE:
            raise ValueError(f"{name} must be true or false, got {qp.get(name)!r}")
        return v in _TRUE

    return integer("k", 10), boolean("rerank"), integer("shortlist", None), boolean("profile")


def create_app(config: Optional[ServeConfig] = None, *, holder: Optional[IndexHolder] = None) -> FastAPI:
    """Build the app; the index is loaded now (errors surface before serving).

    Args:
        config: settings (defaults: ``ServeConfig()``).
        holder: an already loaded holder (tests); else one for ``config.index_dir``.

    Raises:
        IndexMismatchError: no loadable index at ``config.index_dir``.
    """
    cfg = config or ServeConfig()
    holder = holder or IndexHolder(cfg.index_dir, watch_seconds=cfg.watch_seconds, milvus_uri=cfg.milvus_uri)
    pool = HeavyPool(cfg.workers, cfg.queue)
    state = {"tmp": None}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state["tmp"] = private_folder()
        holder.start()
        try:
            yield
        finally:
            holder.stop()
            pool.shutdown()
            remove_folder(state["tmp"])

    app = FastAPI(title="coversearch", version=_version(), lifespan=lifespan,
                  description="Find the other versions (covers, live takes, remixes) of a performance. "
                              "Query results have the shape of `coversearch query --json`.")
    app.state.holder, app.state.pool, app.state.config = holder, pool, cfg
    app.add_middleware(UploadLimit, limit=cfg.max_upload_bytes)

    @app.exception_handler(CoversearchError)
    async def _coversearch_error(request: Request, e: CoversearchError):
        return _error(_status_of(e), str(e))

    @app.exception_handler(PoolFull)
    async def _pool_full(request: Request, e: PoolFull):
        return JSONResponse({"detail": str(e)}, status_code=503, headers={"Retry-After": str(e.retry_after)})

    @app.exception_handler(UploadTooLarge)
    async def _too_large(request: Request, e: UploadTooLarge):
        return _error(413, str(e))

    @app.exception_handler(UnsupportedType)
    async def _unsupported(request: Request, e: UnsupportedType):
        return _error(415, str(e))

    def _k(k: int) -> int:
        if k > cfg.max_k:
            raise ConfigError(f"k must be <= {cfg.max_k} (the server's --max-k), got {k}")
        return k

    def _unknown(snap: Snapshot, perf_id: str, e: UnknownIdError) -> Response:
        return _error(404, str(e), suggestions=snap.bundle.suggest(perf_id))

    def answer_query_id(perf_id: str, qp, *, light_only: bool = True):
        """(status, JSON body, headers) of a query by id, or None for a re-rank query when
        ``light_only`` (it belongs in the heavy pool: the FastAPI route takes it)."""
        snap = holder.current
        try:
            k, rerank, shortlist, profile = _query_params(qp)
        except ValueError as e:
            return 422, dumps({"detail": str(e)}), {}
        if rerank and light_only:
            return None
        try:
            k = _k(k)
            row = snap.bundle.row_of(perf_id)
            out = api.query(perf_id, k=k, index_dir=cfg.index_dir, bundle=snap.bundle)
        except UnknownIdError as e:
            return 404, dumps({"detail": str(e), "suggestions": snap.bundle.suggest(perf_id)}), {}
        except CoversearchError as e:
            return _status_of(e), dumps({"detail": str(e)}), {}
        if profile:
            out["profile"] = distance_profile(snap, snap.bundle.vectors[row], out["query"]["work_id"],
                                              exclude_row=row)
        return 200, dumps(out), {"X-Coversearch-Index": snap.version}

    app.add_middleware(HotQueryById, answer=answer_query_id)

    # ---------------------------------------------------------------- the page
    static = static_dir()
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(static / "index.html", headers={"Cache-Control": "no-cache"})

    # ---------------------------------------------------------------- light
    @app.get("/api/health", summary="Liveness and the index in service")
    async def health():
        snap = holder.current
        return _json({"status": "ok", "count": snap.count, "generation": snap.generation, "version": snap.version,
                      "reload_error": holder.last_error, "heavy": pool.stats()}, snap)

    @app.get("/api/index", summary="The index's manifest and what the server derived from it")
    async def index_info():
        snap = holder.current
        return _json({"index_dir": str(cfg.index_dir), "generation": snap.generation, "version": snap.version,
                      "loaded_at": snap.loaded_at, "load_seconds": round(snap.seconds, 3),
                      "n_works": len(snap.work_rows), "audio_extensions": list(audio_extensions()),
                      "max_upload_mb": cfg.max_upload_mb, "max_k": cfg.max_k,
                      "manifest": snap.bundle.manifest.to_dict()}, snap)

    @app.get("/api/search", summary="Catalogue search by id, title or artist prefix (autocomplete)")
    async def search(q: str = Query(..., min_length=1, max_length=200, description="typed prefix"),
                     limit: int = Query(10, ge=1, le=100)):
        snap = holder.current
        return _json({"q": q, "results": snap.catalogue.search(q, limit)}, snap)

    @app.get("/api/items/{perf_id}", summary="One performance's metadata and the other versions of its work")
    async def item(perf_id: str):
        snap = holder.current
        try:
            row = snap.bundle.row_of(perf_id)
        except UnknownIdError as e:
            return _unknown(snap, perf_id, e)
        rec = snap.item(row)
        ids = snap.catalogue.columns["perf_id"]
        versions = [ids[int(r)] for r in snap.work_rows.get(rec["work_id"], ()) if int(r) != row]
        return _json({"item": rec, "row": row, "versions": versions}, snap)

    # The hottest route parses its few query parameters itself: FastAPI's
    # per-parameter validation cost more than the FAISS search (profiled);
    # the parameters are still documented in the OpenAPI schema.
    @app.get("/api/query/{perf_id}", summary="The k nearest performances to an indexed one (as `query --json`)",
             openapi_extra={"parameters": QUERY_PARAMS})
    async def query_id(perf_id: str, request: Request):
        # without re-rank, HotQueryById answers before this route (by the same function)
        answer = answer_query_id(perf_id, request.query_params)
        if answer is not None:
            status, body, headers = answer
            return Response(body, status_code=status, headers=headers, media_type="application/json")
        snap = holder.current
        k, rerank, shortlist, profile = _query_params(request.query_params)
        k = _k(k)
        try:
            row = snap.bundle.row_of(perf_id)
        except UnknownIdError as e:
            return _unknown(snap, perf_id, e)

        def run():
            return api.query(perf_id, k=k, index_dir=cfg.index_dir, bundle=snap.bundle, rerank=rerank,
                             shortlist=shortlist)

        out = await pool.run(run)
        if profile:
            out["profile"] = distance_profile(snap, snap.bundle.vectors[row], out["query"]["work_id"],
                                              exclude_row=row)
        return _json(out, snap)

    # ---------------------------------------------------------------- heavy
    def _file_job(snap: Snapshot, upload: UploadFile, k: int, rerank: bool, shortlist, profile: bool) -> dict:
        _torch_threads(cfg.threads)
        t0 = time.perf_counter()
        path, kind = save_private(upload.file, upload.filename, state["tmp"], cfg.max_upload_bytes)
        try:
            kw = dict(k=k, index_dir=cfg.index_dir, bundle=snap.bundle, model=cfg.model, rerank=rerank,
                      shortlist=shortlist, with_vector=True)
            try:
                out = api.query(file=path, **kw) if kind == "h5" else _query_audio(path, kw)
            except CoversearchError as e:  # name the client's file, never the private temp path
                raise type(e)(str(e).replace(str(path), Path(upload.filename or "upload").name)) from None
        finally:
            path.unlink(missing_ok=True)
        vec = out.pop("query_vector")
        q = out["query"]
        q["file"] = Path(upload.filename or "").name  # never the private temp path
        q["kind"] = kind
        q["seconds"] = round(time.perf_counter() - t0, 3)
        if profile:
            out["profile"] = distance_profile(snap, vec, q.get("work_id") or None)
        return out

    @app.post("/api/query/file", summary="The k nearest performances to an uploaded h5 or audio file")
    async def query_file(file: UploadFile = File(..., description="a Da-TACOS h5 file or an audio file"),
                         k: int = Form(10, ge=1), rerank: bool = Form(False),
                         shortlist: Optional[int] = Form(None, ge=1), profile: bool = Form(False)):
        snap = holder.current
        k = _k(k)
        try:
            from coversearch.serve.uploads import classify

            classify(file.filename)  # 415 before taking a heavy slot
            return _json(await pool.run(_file_job, snap, file, k, rerank, shortlist, profile), snap)
        finally:
            await file.close()

    @app.get("/api/compare", summary="Are two indexed performances versions of one work? (as `coversearch compare`)")
    async def compare(a: str = Query(..., description="an indexed performance id"),
                      b: str = Query(..., description="another indexed performance id")):
        snap = holder.current
        for x in (a, b):  # ids only: a value here is never opened as a path
            try:
                snap.bundle.row_of(x)
            except UnknownIdError as e:
                return _unknown(snap, x, e)
        return _json(await pool.run(api.compare, a, b, index_dir=cfg.index_dir, model=cfg.model,
                                    bundle=snap.bundle, kinds=("id", "id")), snap)

    def _compare_job(snap: Snapshot, uploads: list, b_id: Optional[str]) -> dict:
        _torch_threads(cfg.threads)
        t0 = time.perf_counter()
        saved = []  # (private path, kind, the client's file name)
        try:
            for up in uploads:
                path, kind = save_private(up.file, up.filename, state["tmp"], cfg.max_upload_bytes)
                saved.append((path, kind, Path(up.filename or "upload").name))
            args = [str(p) for p, _, _ in saved] + ([b_id] if b_id is not None else [])
            kinds = tuple(k for _, k, _ in saved) + (("id",) if b_id is not None else ())
            try:
                out = api.compare(*args, index_dir=cfg.index_dir, model=cfg.model, bundle=snap.bundle, kinds=kinds)
            except CoversearchError as e:  # name the client's files, never the private temp paths
                msg = str(e)
                for path, _, name in saved:
                    msg = msg.replace(str(path), name)
                raise type(e)(msg) from None
        finally:
            for path, _, _ in saved:
                path.unlink(missing_ok=True)
        for side, (_, _, name) in zip(("a", "b"), saved):
            out[side]["file"] = name
        out["seconds"] = round(time.perf_counter() - t0, 3)
        return out

    @app.post("/api/compare/file",
              summary="Are two uploaded files (h5 or audio), or an upload and an indexed id, versions of one work?")
    async def compare_file(a: UploadFile = File(..., description="a Da-TACOS h5 file or an audio file"),
                           b: Optional[UploadFile] = File(None, description="a second file (or give b_id)"),
                           b_id: Optional[str] = Form(None, description="an indexed performance id (or upload b)")):
        snap = holder.current
        uploads = [a] + ([b] if b is not None else [])
        try:
            if (b is None) == (b_id is None):
                return _error(422, "give a second file `b` or an indexed id `b_id`, not both and not neither")
            if b_id is not None:  # an id only: never opened as a path
                try:
                    snap.bundle.row_of(b_id)
                except UnknownIdError as e:
                    return _unknown(snap, b_id, e)
            from coversearch.serve.uploads import classify

            for up in uploads:
                classify(up.filename)  # 415 before taking a heavy slot
            return _json(await pool.run(_compare_job, snap, uploads, b_id), snap)
        finally:
            for up in uploads:
                await up.close()

    @app.post("/api/reload", summary="Load the index folder again if build-index replaced it")
    async def reload(force: bool = False):
        try:  # in a thread (a large index takes a while to load), outside the heavy pool
            out = await asyncio.to_thread(holder.reload, force=force)
        except IndexMismatchError as e:
            snap = holder.current
            return _error(503, f"{e}; still serving generation {snap.generation}",
                          generation=snap.generation)
        return _json(out, holder.current)

    return app


def app_from_env() -> FastAPI:
    """The app of one of several server processes (``--processes``): its config comes from the environment."""
    import os

    from coversearch.serve import CONFIG_ENV

    return create_app(ServeConfig.from_json(os.environ[CONFIG_ENV]))


def _query_audio(path: Path, kw: dict) -> dict:
    """Query by an audio file (decoded, HPCP-extracted and embedded by the audio stage)."""
    import inspect

    if "audio" not in inspect.signature(api.query).parameters:
        raise DataError("audio queries need the audio stage (coversearch.audio), which is not installed")
    out = api.query(audio=path, **kw)
    out["query"].pop("audio", None)  # the private temp path
    return out


def _torch_threads(n: int) -> None:
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _version() -> str:
    from coversearch import __version__

    return __version__
