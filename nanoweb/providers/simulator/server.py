"""A loopback HTTP server that speaks the providers' wire protocols.

Independent of Django: it only needs Pillow. Each protocol lives in its own module and
registers routes under a path prefix (`/crun/...`), so an account's base URL selects it.
Jobs complete after `latency` seconds on a scheduler thread; results are real images
served at URLs that expire, and callbacks are POSTed where the protocol has them.

Per-request directives in the prompt steer the job, for tests and the demo:
`[sim:fail]` ends it as a failed generation, `[sim:latency=2.5]` sets its latency.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from urllib.request import Request as UrlRequest
from urllib.request import urlopen

from nanoweb.providers.simulator import render

log = logging.getLogger("simulator")
DIRECTIVE = re.compile(r"\[sim:(\w+)(?:=([^\]]*))?\]")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, **headers: str) -> Response:
    return Response(status, json.dumps(payload).encode(), headers=headers)


@dataclass
class Job:
    """One simulated generation, whatever the protocol."""

    id: str
    protocol: str
    prompt: str
    width: int
    height: int
    image_format: str
    latency: float
    callback_url: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    state: str = "queued"  # queued, running, succeeded, failed
    error: str = ""
    result_urls: list[str] = field(default_factory=list)
    result_bytes: bytes = b""
    completed: float | None = None

    @property
    def progress(self) -> int:
        if self.state in ("succeeded", "failed"):
            return 100 if self.state == "succeeded" else 0
        return min(95, int(100 * (time.time() - self.created) / max(self.latency, 0.001)))

    def directive(self, name: str) -> str | None:
        for key, value in DIRECTIVE.findall(self.prompt):
            if key == name:
                return value
        return None


Route = Callable[["Simulator", Request, re.Match], Response]


class Simulator:
    def __init__(self, *, api_key: str = "sim-key", latency: float = 8.0, url_ttl: float = 600.0):
        self.api_key = api_key
        self.latency = latency
        self.url_ttl = url_ttl
        self.base_url = ""
        self.jobs: dict[str, Job] = {}
        self.files: dict[str, tuple[bytes, str, float]] = {}
        self.requests: deque[Request] = deque(maxlen=2000)
        self.routes: list[tuple[str, re.Pattern, Route]] = []
        self.completers: dict[str, Callable[[Simulator, Job], None]] = {}
        self._events: list[tuple[float, int, str]] = []
        self._counter = itertools.count()
        self._wakeup = threading.Condition()
        self._render_pool = ThreadPoolExecutor(4, thread_name_prefix="sim-render")
        self._callback_pool = ThreadPoolExecutor(8, thread_name_prefix="sim-callback")
        self._http: ThreadingHTTPServer | None = None
        from nanoweb.providers.simulator import protocols

        for protocol in protocols.ALL:
            protocol.register(self)
        self.route("GET", r"/files/(?P<token>[\w-]+)\.(?P<ext>\w+)", Simulator.serve_file)

    # --- wiring -----------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Route) -> None:
        self.routes.append((method, re.compile(pattern + r"\Z"), handler))

    def dispatch(self, request: Request) -> Response:
        self.requests.append(request)
        allowed = False
        for method, pattern, handler in self.routes:
            match = pattern.match(request.path)
            if match:
                allowed = True
                if method == request.method:
                    return handler(self, request, match)
        if allowed:
            return json_response(405, {"error": "method not allowed"})
        return Response(404, b"<html><body><h1>404 Not Found</h1></body></html>", "text/html")

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Simulator:
        simulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    self.command,
                    parts.path,
                    {k: v[-1] for k, v in parse_qs(parts.query).items()},
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                try:
                    response = simulator.dispatch(request)
                except Exception:
                    log.exception("simulator route failed")
                    response = Response(500, b"<html><body>Internal Server Error</body></html>", "text/html")
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(response.body)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

        self._http = ThreadingHTTPServer((host, port), Handler)
        self._http.daemon_threads = True
        self.base_url = f"http://{host}:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, name="sim-http", daemon=True).start()
        threading.Thread(target=self._run_events, name="sim-events", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._http:
            self._http.shutdown()
            self._http.server_close()

    # --- jobs -------------------------------------------------------------------

    def new_job(self, protocol: str, *, prompt: str, width: int, height: int, image_format: str,
                callback_url: str = "", params: dict[str, Any] | None = None, job_id: str = "") -> Job:  # fmt: skip
        job = Job(
            id=job_id or secrets.token_hex(12),
            protocol=protocol,
            prompt=prompt,
            width=width,
            height=height,
            image_format=image_format,
            latency=self.latency,
            callback_url=callback_url,
            params=params or {},
        )
        if (latency := job.directive("latency")) is not None:
            job.latency = float(latency)
        self.jobs[job.id] = job
        self._schedule(job.created + job.latency * 0.2, job.id)
        self._schedule(job.created + job.latency, job.id)
        return job

    def _schedule(self, at: float, job_id: str) -> None:
        with self._wakeup:
            heapq.heappush(self._events, (at, next(self._counter), job_id))
            self._wakeup.notify()

    def _run_events(self) -> None:
        while True:
            with self._wakeup:
                while not self._events or self._events[0][0] > time.time():
                    timeout = self._events[0][0] - time.time() if self._events else None
                    self._wakeup.wait(timeout)
                _, _, job_id = heapq.heappop(self._events)
            job = self.jobs.get(job_id)
            if job is None or job.state in ("succeeded", "failed"):
                continue
            if job.state == "queued" and time.time() < job.created + job.latency:
                job.state = "running"
            else:
                self._render_pool.submit(self._complete, job)

    def _complete(self, job: Job) -> None:
        try:
            if job.directive("fail") is not None:
                job.error = job.directive("fail") or "The model could not produce an image"
                job.state = "failed"
            else:
                data = render.image(job.prompt, job.width, job.height, job.image_format)
                job.result_bytes = data
                job.result_urls = [self.publish(data, job.image_format)]
                job.state = "succeeded"
        except Exception as exc:  # keep the simulated job consistent even if rendering breaks
            log.exception("render failed")
            job.error, job.state = str(exc), "failed"
        job.completed = time.time()
        if job.callback_url and job.protocol in self.completers:
            self.completers[job.protocol](self, job)

    # --- files and callbacks ----------------------------------------------------

    def publish(self, data: bytes, image_format: str) -> str:
        token = secrets.token_urlsafe(16)
        ext = {"jpeg": "jpg"}.get(image_format, image_format)
        self.files[token] = (data, render.MIME[image_format], time.time() + self.url_ttl)
        return f"{self.base_url}/files/{token}.{ext}"

    def serve_file(self, request: Request, match: re.Match) -> Response:
        entry = self.files.get(match["token"])
        if entry is None or entry[2] < time.time():
            return Response(404, b"<html><body>Not Found</body></html>", "text/html")
        return Response(200, entry[0], entry[1])

    def post_callback(self, url: str, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()

        def send() -> None:
            request = UrlRequest(
                url, data=body, method="POST", headers={"Content-Type": "application/json", **(headers or {})}
            )
            try:
                with urlopen(request, timeout=10) as answer:
                    answer.read()
            except Exception as exc:
                log.info("callback to %s failed: %s", url, exc)

        self._callback_pool.submit(send)


def size_for(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """Pixel size for a ratio like 16:9 at 512px / 1K / 2K / 4K: about base² pixels, as Gemini sizes them."""
    base = {"512px": 512, "512": 512, "1K": 1024, "2K": 2048, "4K": 4096}.get(resolution, 1024)
    try:
        w, h = (int(part) for part in aspect_ratio.split(":"))
    except ValueError:
        w, h = 1, 1
    # Same pixel count as base×base, rounded to multiples of 16.
    scale = (base * base / (w * h)) ** 0.5
    return max(16, round(w * scale / 16) * 16), max(16, round(h * scale / 16) * 16)
