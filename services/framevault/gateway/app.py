"""The gateway's HTTP side (transport only): routes, sessions, CSRF, security headers.

Each ``/api`` handler reads its parameters, calls one ``browse.Browser``
method with the caller's token and answers JSON or a redirect. Failures of
any kind are mapped once, by ``errors.http_error``. Paths outside ``/api``
serve the built web app; one that is not a file answers ``index.html`` so deep
links work. API.md describes every endpoint.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from framevault.blob.storage import public_endpoint
from framevault.common.config import Settings
from framevault.common.errors import FramevaultError, InvalidArgument, Unauthenticated
from framevault.gateway.backend import Backends
from framevault.gateway.browse import Browser, checked_page_size
from framevault.gateway.errors import HttpError, http_error, not_found_route, status_of
from framevault.gateway.sessions import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SESSION_COOKIE,
    SessionSealer,
    csrf_matches,
    new_csrf_token,
    session_key,
)

log = structlog.get_logger("framevault.gateway")

Handler = Callable[[Request, "str | None"], Awaitable[Response]]
_SAFE_METHODS = frozenset({"GET", "HEAD"})
# Largest JSON body an /api request may carry (bytes): the API's requests are a few fields.
MAX_JSON_BODY_BYTES = 64 * 1024
# Redirects to download URLs may be reused for a short while (the URLs live longer).
_REDIRECT_CACHE = "private, max-age=60"


def content_security_policy(settings: Settings) -> str:
    # Images come from short-lived download URLs of the object store (its own origin) or from
    # external https sources; scripts only from the gateway's own files, never inline.
    host, https = public_endpoint(settings)
    store_origin = f"{'https' if https else 'http'}://{host}"
    return "; ".join([
        "default-src 'self'", "script-src 'self'", "object-src 'none'", "base-uri 'none'",
        "frame-ancestors 'none'", "form-action 'self'",
        f"img-src 'self' data: blob: https: {store_origin}",
        f"connect-src 'self' {store_origin}",
        # Inline style attributes (positions of drawn annotations) carry no script.
        "style-src 'self' 'unsafe-inline'",
    ])


class SecurityHeaders:
    """Adds the security headers to every HTTP answer (API, redirects, static files, errors)."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.headers = [
            (b"content-security-policy", content_security_policy(settings).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(self.headers)
                if tls:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def error_response(error: HttpError) -> JSONResponse:
    return JSONResponse(error.body, status_code=error.status, headers={**error.headers, "Cache-Control": "no-store"})


class Gateway:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.sealer = SessionSealer(session_key(settings), settings.gateway_session_seconds)
        self.requires_credential = settings.security_mode != "local-dev"
        static = settings.gateway_static_dir
        self.static_dir = Path(static).resolve() if static else None
        self._backends: Backends | None = None
        self._browser: Browser | None = None

    def attach(self, backends: Backends) -> None:
        self._backends = backends
        self._browser = Browser(backends, self.settings)

    @property
    def backends(self) -> Backends:
        assert self._backends is not None, "the gateway serves once its backends are attached"
        return self._backends

    @property
    def browser(self) -> Browser:
        assert self._browser is not None, "the gateway serves once its backends are attached"
        return self._browser

    # -- the wrapper every /api handler runs in -------------------------------

    def api(self, handler: Handler, *, anonymous: bool = False) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            response = await self._answer(handler, request, anonymous)
            # The path only: query strings may carry page tokens.
            (log.warning if response.status_code >= 500 else log.debug)(
                "http_request", method=request.method, path=request.url.path, status=response.status_code,
                elapsed_ms=round((time.perf_counter() - started) * 1000, 2))
            return response
        return endpoint

    async def _answer(self, handler: Handler, request: Request, anonymous: bool) -> Response:
        try:
            token = self._token(request, anonymous=anonymous)
            return await handler(request, token)
        except HttpError as exc:
            return error_response(exc)
        except (aio.AioRpcError, FramevaultError) as exc:
            return error_response(http_error(status_of(exc)))
        except Exception:
            # A fault of the gateway itself: logged with its trace, answered as JSON like any failure.
            log.exception("gateway_request_failed", method=request.method, path=request.url.path)
            return error_response(http_error(status_pb2.Status(
                code=code_pb2.INTERNAL, message="the gateway failed to answer (its log has the details)")))

    def _token(self, request: Request, *, anonymous: bool) -> str | None:
        """The caller's token: a Bearer header (scripts), else the session cookie (browsers), whose
        state-changing requests must echo the CSRF cookie in the X-CSRF-Token header."""
        header = request.headers.get("authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("the Authorization header must be 'Bearer <token>'",
                                      reason="CREDENTIAL_MALFORMED")
            return token.strip()
        cookie = request.cookies.get(SESSION_COOKIE)
        session = self.sealer.open(cookie) if cookie else None
        if anonymous:
            return session.token if session is not None else None
        if session is None and self.requires_credential:
            raise Unauthenticated("sign in first: no valid session", reason="SESSION_MISSING")
        # Checked with or without a session: in local-dev mode a browser needs none, and a forged
        # cross-site request must not change anything there either.
        if request.method not in _SAFE_METHODS and not csrf_matches(request.cookies.get(CSRF_COOKIE),
                                                                     request.headers.get(CSRF_HEADER)):
            raise http_error(_forbidden("the X-CSRF-Token header must equal the fv_csrf cookie "
                                        "(cross-site request refused)", "CSRF_TOKEN_MISMATCH"))
        return session.token if session is not None else None

    # -- sessions -------------------------------------------------------------

    async def sign_in(self, request: Request, _: str | None) -> Response:
        body = await json_body(request)
        token = body.get("token")
        if not isinstance(token, str) or not token.strip():
            raise InvalidArgument.field("token", "required: an API key or a JWT")
        token = token.strip()
        caller = await self.browser.caller(token)
        response = JSONResponse({"caller": caller})
        response.set_cookie(SESSION_COOKIE, self.sealer.seal(token), max_age=self.sealer.lifetime_seconds,
                            path="/", secure=request.url.scheme == "https", httponly=True, samesite="strict")
        self._set_csrf_cookie(request, response)
        response.headers["Cache-Control"] = "no-store"
        return response

    async def session(self, request: Request, token: str | None) -> Response:
        response = no_store({"caller": await self.browser.caller(token)})
        if not request.cookies.get(CSRF_COOKIE):
            # A local-dev browser never signs in: it gets its CSRF cookie here.
            self._set_csrf_cookie(request, response)
        return response

    def _set_csrf_cookie(self, request: Request, response: Response) -> None:
        # Readable by the page's scripts (double submit); says nothing about the session.
        response.set_cookie(CSRF_COOKIE, new_csrf_token(), max_age=self.sealer.lifetime_seconds, path="/",
                            secure=request.url.scheme == "https", httponly=False, samesite="strict")

    async def sign_out(self, request: Request, _: str | None) -> Response:
        response = no_store({"signed_out": True})
        secure = request.url.scheme == "https"
        for name, http_only in ((SESSION_COOKIE, True), (CSRF_COOKIE, False)):
            response.delete_cookie(name, path="/", secure=secure, httponly=http_only, samesite="strict")
        return response

    async def healthz(self, request: Request, _: str | None) -> Response:
        states: dict[str, str] = {}
        for name, channel in zip(("metadata", "blob"), self.backends.channels, strict=True):
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=2.0)
                states[name] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except aio.AioRpcError as exc:
                states[name] = exc.code().name
        serving = all(state == "SERVING" for state in states.values())
        return JSONResponse({"serving": serving, "services": states}, status_code=200 if serving else 503,
                            headers={"Cache-Control": "no-store"})

    # -- datasets and versions ------------------------------------------------

    async def datasets(self, request: Request, token: str | None) -> Response:
        q = request.query_params
        return no_store(await self.browser.datasets(token, q.get("name", ""), q.get("tag", ""),
                                                    q.get("page_token", "")))

    async def dataset(self, request: Request, token: str | None) -> Response:
        return no_store(await self.browser.dataset(token, request.path_params["ds"]))

    async def versions(self, request: Request, token: str | None) -> Response:
        return no_store(await self.browser.versions(token, request.path_params["ds"]))

    async def create_version(self, request: Request, token: str | None) -> Response:
        body = await json_body(request)
        return no_store(await self.browser.create_version(
            token, request.path_params["ds"], _text(body, "parent_id"), _text(body, "name"),
            _text(body, "description")), status_code=201)

    async def version(self, request: Request, token: str | None) -> Response:
        p = request.path_params
        return no_store(await self.browser.version(token, p["ds"], p["v"]))

    async def publish_version(self, request: Request, token: str | None) -> Response:
        p = request.path_params
        return no_store(await self.browser.publish_version(token, p["ds"], p["v"]))

    async def snapshot_version(self, request: Request, token: str | None) -> Response:
        body = await json_body(request, required=False)
        p = request.path_params
        return no_store(await self.browser.snapshot_version(token, p["ds"], p["v"], _text(body, "name"),
                                                            _text(body, "description")))

    async def delete_version(self, request: Request, token: str | None) -> Response:
        p = request.path_params
        return no_store(await self.browser.delete_version(token, p["ds"], p["v"]))

    async def statistics(self, request: Request, token: str | None) -> Response:
        p = request.path_params
        return no_store(await self.browser.statistics(token, p["ds"], p["v"], request.query_params.get("meta_key", "")))

    # -- frames ---------------------------------------------------------------

    async def frames(self, request: Request, token: str | None) -> Response:
        p, q = request.path_params, request.query_params
        return no_store(await self.browser.frames(
            token, p["ds"], p["v"], q.get("query", ""), checked_page_size(q.get("page_size")),
            q.get("page_token", ""), context=q.get("context"), sort=q.get("sort", ""),
            descending=checked_flag(q.get("desc"), "desc")))

    async def contexts(self, request: Request, token: str | None) -> Response:
        p, q = request.path_params, request.query_params
        return no_store(await self.browser.contexts(token, p["ds"], p["v"], q.get("query", ""),
                                                    checked_page_size(q.get("page_size")), q.get("page_token", "")))

    async def frame(self, request: Request, token: str | None) -> Response:
        p = request.path_params
        return no_store(await self.browser.frame(token, p["ds"], p["v"], p["f"]))

    async def thumbnail(self, request: Request, token: str | None) -> Response:
        p = request.path_params
        return redirect(await self.browser.thumbnail_url(token, p["ds"], p["v"], p["f"]))

    async def source_image(self, request: Request, token: str | None) -> Response:
        p = request.path_params
        return redirect(await self.browser.source_image_url(token, p["ds"], p["v"], p["f"], p["i"]))

    async def mask_image(self, request: Request, token: str | None) -> Response:
        p = request.path_params
        return redirect(await self.browser.mask_image_url(token, p["ds"], p["v"], p["f"], p["i"], p["m"]))

    async def diff(self, request: Request, token: str | None) -> Response:
        q = request.query_params
        return no_store(await self.browser.diff(token, request.path_params["ds"], q.get("from", ""), q.get("to", ""),
                                                q.get("page_token", "")))

    async def unknown_api(self, request: Request, _: str | None) -> Response:
        raise not_found_route()

    # -- the web app's files --------------------------------------------------

    async def static(self, request: Request) -> Response:
        if self.static_dir is None or not (self.static_dir / "index.html").is_file():
            return PlainTextResponse("the web app is not built (make web)", status_code=404)
        wanted = (self.static_dir / request.path_params["path"]).resolve()
        if wanted.is_file() and wanted.is_relative_to(self.static_dir):
            # Vite names assets by content hash: they never change under one name.
            immutable = wanted.parent.name == "assets"
            return FileResponse(wanted, headers={"Cache-Control": "public, max-age=31536000, immutable"
                                                 if immutable else "no-cache"})
        return FileResponse(self.static_dir / "index.html", headers={"Cache-Control": "no-cache"})

    def routes(self) -> list[Route]:
        api = self.api
        version = "/api/datasets/{ds}/versions/{v}"
        frame = version + "/frames/{f:path}"
        return [
            Route("/api/healthz", api(self.healthz, anonymous=True), methods=["GET"]),
            Route("/api/session", api(self.sign_in, anonymous=True), methods=["POST"]),
            Route("/api/session", api(self.session), methods=["GET"]),
            Route("/api/session", api(self.sign_out, anonymous=True), methods=["DELETE"]),
            Route("/api/datasets", api(self.datasets), methods=["GET"]),
            Route("/api/datasets/{ds}", api(self.dataset), methods=["GET"]),
            Route("/api/datasets/{ds}/versions", api(self.versions), methods=["GET"]),
            Route("/api/datasets/{ds}/versions", api(self.create_version), methods=["POST"]),
            Route("/api/datasets/{ds}/diff", api(self.diff), methods=["GET"]),
            Route(version, api(self.version), methods=["GET"]),
            Route(version, api(self.delete_version), methods=["DELETE"]),
            Route(version + "/publish", api(self.publish_version), methods=["POST"]),
            Route(version + "/snapshot", api(self.snapshot_version), methods=["POST"]),
            Route(version + "/statistics", api(self.statistics), methods=["GET"]),
            Route(version + "/frames", api(self.frames), methods=["GET"]),
            Route(version + "/contexts", api(self.contexts), methods=["GET"]),
            # Frame ids may hold "/": the longer routes come first.
            Route(frame + "/thumbnail", api(self.thumbnail), methods=["GET"]),
            Route(frame + "/sources/{i:int}/image", api(self.source_image), methods=["GET"]),
            Route(frame + "/sources/{i:int}/masks/{m:int}/image", api(self.mask_image), methods=["GET"]),
            Route(frame, api(self.frame), methods=["GET"]),
            Route("/api/{rest:path}", api(self.unknown_api, anonymous=True)),
            Route("/{path:path}", self.static, methods=["GET", "HEAD"]),
        ]


def _forbidden(message: str, reason: str) -> status_pb2.Status:
    status = status_pb2.Status(code=code_pb2.PERMISSION_DENIED, message=message)
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason=reason, domain="framevault.dev"))
    return status


def no_store(body: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, headers={"Cache-Control": "no-store"})


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": _REDIRECT_CACHE})


async def json_body(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The JSON object of a request. Only ``application/json`` is read: a cross-site form cannot
    send it without the browser asking first, so this closes forged sign-ins too."""
    raw = await request.body()
    if not raw and not required:
        return {}
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise InvalidArgument.field("content-type", "must be application/json")
    if len(raw) > MAX_JSON_BODY_BYTES:
        raise InvalidArgument.field("body", f"at most {MAX_JSON_BODY_BYTES} bytes")
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidArgument.field("body", "not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidArgument.field("body", "must be a JSON object")
    return body


def checked_flag(raw: str | None, name: str) -> bool:
    if raw in (None, "", "0", "false"):
        return False
    if raw in ("1", "true"):
        return True
    raise InvalidArgument.field(name, "must be 0 or 1")


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise InvalidArgument.field(name, "must be a string")
    return value


def build_app(settings: Settings, backends: Backends | None = None) -> Starlette:
    """The gateway's ASGI app. Without ``backends`` it opens channels to the services at start
    (inside the serving event loop, which gRPC aio channels bind to) and closes them at the end.
    Settings that cannot work (no session secret with security on) raise here, before serving."""
    gateway = Gateway(settings)
    if backends is not None:
        gateway.attach(backends)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if backends is not None:
            yield
            return
        opened = Backends(settings)
        gateway.attach(opened)
        try:
            yield
        finally:
            await opened.close()

    app = Starlette(routes=gateway.routes(), lifespan=lifespan)
    app.add_middleware(SecurityHeaders, settings=settings)
    return app
