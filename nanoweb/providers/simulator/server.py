"""A loopback HTTP server that speaks the providers' wire protocols.

Independent of Django: it only needs Pillow. Each protocol lives in its own module and
registers routes under a path prefix (`/crun/...`), so an account's base URL selects it.
Jobs complete after `latency` seconds on a scheduler thread; results are real images
served at URLs that expire, and callbacks are POSTed where the protocol has them.

Faults are asked for with directives, in the prompt (`[sim:name=value]`, one request) or
appended to the API key (`sim-key+name=value+...`, every request of an account):

  fail[=reason]        the generation fails              latency=S     the job takes S seconds
  done_at=T            the job completes at unix time T (benchmarks: many jobs done in one instant)
  error=CODE           create answers that error         status_error=CODE[xN]  status reads do (N times)
                       (in the key, the balance and model list answer it too: a bad key, no credit)
  errors=C1,C2,...     the account's n-th create answers Cn, later ones succeed (a fault sequence)
  retry_after=S        429 answers carry Retry-After     html / status_html     an HTML 502 page instead
  slow=S               every answer waits S seconds      missing=FIELD  the status answer lacks FIELD
  slow_create=S        the create call answers after S seconds (and then accepts the job)
  per_hour=N           (in the key) the key's (N+1)th request within an hour is refused with the
                       vendor's 429 (nanophoto: API_KEY_RATE_LIMIT_EXCEEDED), as is every one after
                       it until an hour has passed since the oldest counted one; refusals do not count
  result=404|truncated|notimage|huge   what the result URL serves
  late_file=S          the result URL answers 404 for its first S seconds (a CDN catching up)
  block=REASON / finish=REASON         (Gemini) a blocked prompt / an image-less finish

CODE is the protocol's own spelling: an HTTP status, crun's envelope code, nanophoto's errorCode.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import logging
import re
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from urllib.request import Request as UrlRequest
from urllib.request import urlopen

from nanoweb.providers.simulator import render

log = logging.getLogger("simulator")
DIRECTIVE = re.compile(r"\[sim:(\w+)(?:=([^\]]*))?\]")
HUGE_PADDING = 16 * 1024 * 1024


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

    @property
    def api_key(self) -> str:
        """The key, wherever the protocol puts it (each vendor has its own header)."""
        for header in ("x-api-key", "x-goog-api-key"):
            if header in self.headers:
                return self.headers[header]
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else ""

    def key_is(self, valid: str) -> bool:
        return bool(self.api_key) and self.api_key.split("+")[0] == valid


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
    picture: Future[bytes] | None = None  # made while it runs, as a provider's is ready when it says done
    completed: float | None = None
    fault_count: int = 0
    reads: list[float] = field(default_factory=list)  # when its status was read (benchmarks)

    @property
    def progress(self) -> int:
        if self.state in ("succeeded", "failed"):
            return 100 if self.state == "succeeded" else 0
        return min(95, int(100 * (time.time() - self.created) / max(self.latency, 0.001)))

    directives: dict[str, str] = field(default_factory=dict)

    def directive(self, name: str) -> str | None:
        return self.directives.get(name)


Route = Callable[["Simulator", Request, re.Match], Response]


class Simulator:
    def __init__(self, *, api_key: str = "sim-key", latency: float = 8.0, url_ttl: float = 600.0):
        self.api_key = api_key
        self.latency = latency
        self.url_ttl = url_ttl
        self.base_url = ""
        self.jobs: dict[str, Job] = {}
        self.idempotency: dict[str, Job] = {}
        self.files: dict[str, tuple[bytes, str, float]] = {}
        self.not_before: dict[str, float] = {}  # files served only from then on (late_file)
        self.requests: deque[Request] = deque(maxlen=2000)
        self.routes: list[tuple[str, re.Pattern, Route]] = []
        self.completers: dict[str, Callable[[Simulator, Job], None]] = {}
        self._events: list[tuple[float, int, str]] = []
        self._counter = itertools.count()
        self._wakeup = threading.Condition()
        self._render_pool = ThreadPoolExecutor(4, thread_name_prefix="sim-render")
        self._callback_pool = ThreadPoolExecutor(8, thread_name_prefix="sim-callback")
        self._http: ThreadingHTTPServer | None = None
        self.hourly: dict[str, deque[float]] = {}  # API key → its counted requests of the last hour
        self.refused: Counter[str] = Counter()  # protocol → requests refused for the hourly limit
        # protocol → its vendor's "rate limit exceeded" answer (protocols register theirs)
        self.limit_answers: dict[str, Callable[[Request], Response]] = {}
        from nanoweb.providers.simulator import protocols

        for protocol in protocols.ALL:
            protocol.register(self)
        self.route("GET", r"/files/(?P<token>[\w-]+)\.(?P<ext>\w+)", Simulator.serve_file)
        self.route("GET", r"/_sim/stats", Simulator.stats)
        self.per_second: Counter[tuple[int, str]] = Counter()  # (second, protocol) → API requests
        self.creates: Counter[str] = Counter()  # API key → create requests (for fault sequences)
        self.lock = threading.Lock()

    # --- wiring -----------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Route) -> None:
        self.routes.append((method, re.compile(pattern + r"\Z"), handler))

    def dispatch(self, request: Request) -> Response:
        self.requests.append(request)
        protocol = request.path.split("/")[1]
        if protocol not in ("files", "_sim"):
            self.per_second[(int(time.time()), protocol)] += 1
            if (refusal := self.over_hourly_limit(protocol, request)) is not None:
                return refusal
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

    def over_hourly_limit(self, protocol: str, request: Request) -> Response | None:
        """The vendor's 429 when the key's `per_hour` directive is spent, else None (counted)."""
        limit = directives(request).get("per_hour")
        if not limit:
            return None
        with self.lock:
            counted = self.hourly.setdefault(request.api_key, deque())
            while counted and time.time() - counted[0] >= 3600:
                counted.popleft()
            if len(counted) < int(limit):
                counted.append(time.time())
                return None
            self.refused[protocol] += 1
        answer = self.limit_answers.get(protocol)
        return answer(request) if answer else json_response(429, {"error": "rate limit exceeded"})

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

    def new_job(self, protocol: str, request: Request, *, prompt: str, width: int, height: int, image_format: str,
                callback_url: str = "", params: dict[str, Any] | None = None, job_id: str = "",
                scheduled: bool = True) -> Job:  # fmt: skip
        job = Job(
            directives=directives(request, prompt),
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
        if (done_at := job.directive("done_at")) is not None:
            job.latency = max(0.0, float(done_at) - job.created)
        self.jobs[job.id] = job
        if scheduled:  # a synchronous protocol completes the job in its own handler
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
                if job.directive("fail") is None:
                    job.picture = self._render_pool.submit(self._picture, job)
            elif job.directive("fail") is not None or (job.picture is not None and job.picture.done()):
                # Nothing left to render: done on time, not behind other jobs' renders.
                self._complete(job)
            else:
                self._render_pool.submit(self._complete, job)

    def _complete(self, job: Job) -> None:
        try:
            if job.directive("fail") is not None:
                job.error = job.directive("fail") or "The model could not produce an image"
                job.state = "failed"
            else:
                if job.picture is not None and job.picture.done() and job.picture.exception() is None:
                    data = job.picture.result()
                else:  # asked to finish before its picture was made
                    data = self._picture(job)
                job.result_bytes = data
                late = float(job.directive("late_file") or 0)
                job.result_urls = [self.publish(data, job.image_format, job.directive("result"), late=late)]
                job.state = "succeeded"
        except Exception as exc:  # keep the simulated job consistent even if rendering breaks
            log.exception("render failed")
            job.error, job.state = str(exc), "failed"
        job.completed = time.time()
        if job.callback_url and job.protocol in self.completers:
            self.completers[job.protocol](self, job)

    @staticmethod
    def _picture(job: Job) -> bytes:
        words = DIRECTIVE.sub("", job.prompt).strip()  # directives are not part of the picture
        return render.image(words, job.width, job.height, job.image_format)

    # --- files and callbacks ----------------------------------------------------

    def publish(self, data: bytes, image_format: str, variant: str | None = None, *, late: float = 0.0) -> str:
        """Serve `data` at a new URL that expires, from `late` seconds on; `variant` spoils it on purpose."""
        token = secrets.token_urlsafe(16)
        ext = {"jpeg": "jpg"}.get(image_format, image_format)
        mime = render.MIME[image_format]
        if variant == "truncated":
            data = data[: len(data) // 2]
        elif variant == "notimage":
            data, mime = b"<html><body>Access denied</body></html>", "text/html"
        elif variant == "huge":
            data = data + bytes(HUGE_PADDING)
        if variant != "404":
            self.files[token] = (data, mime, time.time() + self.url_ttl)
            if late:
                self.not_before[token] = time.time() + late
        return f"{self.base_url}/files/{token}.{ext}"

    def stats(self, request: Request, match: re.Match) -> Response:
        """For benchmarks: when each job completed and its status was read, and the busiest
        second per protocol."""
        busiest: dict[str, int] = {}
        for (_, protocol), count in list(self.per_second.items()):
            busiest[protocol] = max(busiest.get(protocol, 0), count)
        jobs = list(self.jobs.values())
        completed = {job.id: job.completed for job in jobs if job.completed}
        reads = {job.id: job.reads for job in jobs if job.reads}
        prompts = {job.id: job.prompt for job in jobs}
        return json_response(
            200,
            {
                "completed": completed,
                "reads": reads,
                "prompts": prompts,
                "max_requests_per_second": busiest,
                "refused": self.refused,
            },  # fmt: skip
        )

    def serve_file(self, request: Request, match: re.Match) -> Response:
        entry = self.files.get(match["token"])
        if entry is None or entry[2] < time.time() or self.not_before.get(match["token"], 0) > time.time():
            return Response(404, b"<html><body>Not Found</body></html>", "text/html")
        return Response(200, entry[0], entry[1])

    def post_callback(
        self, url: str, payload: dict[str, Any], sign: Callable[[bytes], dict[str, str]] | None = None
    ) -> None:
        """POST the payload to the job's callback URL; `sign` adds headers computed over the body."""
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", **(sign(body) if sign else {})}

        def send() -> None:
            request = UrlRequest(url, data=body, method="POST", headers=headers)
            try:
                with urlopen(request, timeout=10) as answer:
                    answer.read()
            except Exception as exc:
                log.info("callback to %s failed: %s", url, exc)

        self._callback_pool.submit(send)


def directives(request: Request, prompt: str = "") -> dict[str, str]:
    """Fault directives for this request: the account's (in its key) and the prompt's."""
    found: dict[str, str] = {}
    for part in request.api_key.split("+")[1:]:
        name, _, value = part.partition("=")
        found[name] = value
    found.update(dict(DIRECTIVE.findall(prompt)))
    return found


def injected_fault(sim: Simulator, request: Request, phase: str, errors: Callable[[str, Request], Response],
                   job: Job | None = None) -> Response | None:  # fmt: skip
    """The answer a directive asks for in this phase ("create" or "status"), if any."""
    found = job.directives if job else directives(request, _prompt_of(request))
    if slow := found.get("slow"):
        time.sleep(float(slow))
    if phase == "create" and (slow_create := found.get("slow_create")):
        time.sleep(float(slow_create))
    if phase == "create" and "html" in found or phase == "status" and "status_html" in found:
        return Response(502, b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", "text/html")
    code = found.get("error" if phase == "create" else "status_error")
    if phase == "create" and "errors" in found:
        with sim.lock:
            sim.creates[request.api_key] += 1
            sequence = found["errors"].split(",")
            code = sequence[sim.creates[request.api_key] - 1] if sim.creates[request.api_key] <= len(sequence) else ""
    if not code:
        return None
    code, _, times = code.partition("x")
    if job and times:
        job.fault_count += 1
        if job.fault_count > int(times):
            return None
    response = errors(code, request)
    if response.status == 429 and "retry_after" in found:
        response.headers["Retry-After"] = found["retry_after"]
    return response


def account_fault(request: Request, errors: Callable[[str, Request], Response]) -> Response | None:
    """What a cheap account call (balance, model list) answers: the key's `error=` directive, as
    a bad key or an empty account would; a prompt's directives never reach it."""
    code = directives(request).get("error", "")
    return errors(code, request) if code else None


def _prompt_of(request: Request) -> str:
    body = request.json()
    if not isinstance(body, dict):
        return ""
    if isinstance(body.get("input"), dict):  # crun
        prompt = body["input"].get("prompt")
    elif isinstance(body.get("contents"), list):  # Gemini
        prompt = " ".join(
            part.get("text", "") for content in body["contents"] if isinstance(content, dict)
            for part in content.get("parts", []) if isinstance(part, dict) and isinstance(part.get("text"), str)
        )  # fmt: skip
    else:
        prompt = body.get("prompt")
    return prompt if isinstance(prompt, str) else ""


def fetch_references(urls: list[str]) -> tuple[list[str], str]:
    """Download reference images as a vendor would: their SHA-256s, or why one failed.

    Only loopback addresses are fetched: the simulator never reaches off this machine.
    Any other URL is accepted unfetched and recorded as "not fetched"."""
    digests = []
    for url in urls:
        if urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
            digests.append("not fetched")
            continue
        try:
            with urlopen(UrlRequest(url, headers={"User-Agent": "simulator"}), timeout=10) as answer:
                digests.append(hashlib.sha256(answer.read()).hexdigest())
        except Exception as exc:
            return digests, f"could not download reference image {url[:120]}: {exc}"
    return digests, ""


def without_missing(job: Job, payload: dict[str, Any]) -> dict[str, Any]:
    """The status payload less the field a `missing=` directive names."""
    if missing := job.directive("missing"):
        payload = {k: v for k, v in payload.items() if k != missing}
    return payload


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
