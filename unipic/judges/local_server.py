"""A local judge server on 127.0.0.1 that speaks the protocols the real judges speak.

- `POST /v1/chat/completions` (OpenAI-compatible, image inputs as data URLs): what vLLM / KServe serve for
  Qwen2.5-VL and api.openai.com serves for GPT-4.1. It recognises the request by its prompt (VIEScore SC/PQ,
  a text-to-image SC prompt, an ImgEdit rubric) and answers in the format the prompt asks for.
- `POST /v2/models/{name}/infer` (KServe V2 REST, BYTES base64 images): a scorer returning FP32 `score`.
- `GET /v1/models`, `GET /v2/health/ready|live`, `GET /v2/models/{name}[/ready]`.

Answers come from a `JudgeBackend`; the default one (`unipic.judges.shapes_backend`) runs the exact
ShapesWorld detector on the images and reads the instruction or caption from the prompt. It stands in for
a remote VLM that cannot run here, behind the same HTTP protocol, so the client code under test is the one
that talks to the real judge.

Fault switches for tests (`Faults`, also settable at runtime with `POST /admin/faults`): garbage answers,
out-of-range scores, 5xx errors, answers slower than the client's timeout, a fixed delay, and "the first N
requests fail". `GET /admin/stats` returns request counters and the peak number of requests in flight.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from PIL import Image

from unipic.errors import DataError
from unipic.judges.images import decode_b64_image
from unipic.logging import get_logger

log = get_logger(__name__)


class JudgeBackend(Protocol):
    """What answers the questions. Scores are on each protocol's own scale."""

    name: str

    def t2i_sc(self, image: Image.Image, prompt: str) -> tuple[list[float], str]: ...
    def edit_sc(self, source: Image.Image, edited: Image.Image, instruction: str) -> tuple[list[float], str]: ...
    def pq(self, image: Image.Image) -> tuple[list[float], str]: ...
    def rubric(self, source: Image.Image, edited: Image.Image, instruction: str, dimensions: list[str]
               ) -> tuple[list[int], str]: ...
    def score(self, image: Image.Image, text: str | None, source: Image.Image | None) -> float: ...
    def vqa(self, image: Image.Image, question: str) -> str: ...


@dataclass
class Faults:
    garbage_rate: float = 0.0       # answer prose instead of the requested format
    out_of_range_rate: float = 0.0  # answer well-formed JSON with scores outside the scale
    error_rate: float = 0.0         # HTTP 503
    timeout_rate: float = 0.0       # sleep `hang_s` before answering
    hang_s: float = 5.0
    delay_s: float = 0.0            # every request
    fail_first: int = 0             # the first N requests get HTTP 503
    retry_after_s: float = 0.0      # Retry-After header sent with simulated 503s
    seed: int = 0

    def update(self, data: dict[str, Any]) -> None:
        names = {f.name for f in fields(self)}
        unknown = set(data) - names
        if unknown:
            raise DataError(f"unknown fault switch(es) {sorted(unknown)}; known: {sorted(names)}")
        for k, v in data.items():
            setattr(self, k, type(getattr(self, k))(v))


GARBAGE = "Sure! The edit looks quite good overall, I would say around seven or eight out of ten."

_EDIT_RE = re.compile(r"Editing instruction:\s*(.+?)\s*$", re.S)
_T2I_RE = re.compile(r"Text prompt:\s*(.+?)\s*$", re.S)
_IMGEDIT_INSTR_RE = re.compile(r"editing instruction is\s*:\s*(.+?)\.?\s*\n", re.I)
_DIM_RE = re.compile(r"^\s*([^:\n]+?)\s*:\s*A number from 1 to 5\.?\s*$", re.M)


class _State:
    def __init__(self, faults: Faults):
        self.faults = faults
        self.lock = threading.Lock()
        self.rng = random.Random(faults.seed)
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.by_kind: dict[str, int] = {}
        self.faults_served: dict[str, int] = {}

    def enter(self, kind: str) -> tuple[int, float]:
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
            return self.requests, self.rng.random()

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def served(self, fault: str) -> None:
        with self.lock:
            self.faults_served[fault] = self.faults_served.get(fault, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"requests": self.requests, "in_flight": self.in_flight, "max_in_flight": self.max_in_flight,
                    "by_kind": dict(self.by_kind), "faults_served": dict(self.faults_served),
                    "faults": asdict(self.faults)}


def _choose_fault(f: Faults, n: int, u: float) -> str | None:
    """One uniform draw `u` per request, split into bands so the rates add up."""
    if n <= f.fail_first:
        return "error"
    edges = [("error", f.error_rate), ("timeout", f.timeout_rate), ("garbage", f.garbage_rate),
             ("out_of_range", f.out_of_range_rate)]
    acc = 0.0
    for name, rate in edges:
        acc += rate
        if u < acc:
            return name
    return None


def classify_chat(text: str, n_images: int) -> str:
    """Which of our judge prompts this is: edit_sc | t2i_sc | pq | rubric | vqa | unknown."""
    if "yes or no" in text and "Question:" in text and n_images >= 1:
        return "vqa"
    if "A number from 1 to 5" in text and n_images >= 2:
        return "rubric"
    if "Editing instruction:" in text and n_images >= 2:
        return "edit_sc"
    if "Text prompt:" in text and n_images >= 1:
        return "t2i_sc"
    if "naturalness" in text and "artifacts" in text and n_images >= 1:
        return "pq"
    return "unknown"


def _split_content(messages: list[dict[str, Any]]) -> tuple[str, list[Image.Image]]:
    texts: list[str] = []
    images: list[Image.Image] = []
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        for part in content or []:
            if part.get("type") == "text":
                texts.append(part.get("text", ""))
            elif part.get("type") == "image_url":
                url = part.get("image_url", {}).get("url", "")
                images.append(decode_b64_image(url))
    return "\n".join(texts), images


def answer_chat(backend: JudgeBackend, text: str, images: list[Image.Image]) -> tuple[str, str]:
    """(kind, answer text) for a chat request, in the format the prompt asks for."""
    kind = classify_chat(text, len(images))
    if kind == "edit_sc":
        scores, why = backend.edit_sc(images[0], images[1], _EDIT_RE.search(text).group(1).strip())
        return kind, json.dumps({"score": scores, "reasoning": why})
    if kind == "t2i_sc":
        scores, why = backend.t2i_sc(images[-1], _T2I_RE.search(text).group(1).strip())
        return kind, json.dumps({"score": scores, "reasoning": why})
    if kind == "pq":
        scores, why = backend.pq(images[-1])
        return kind, json.dumps({"score": scores, "reasoning": why})
    if kind == "vqa":
        return kind, backend.vqa(images[-1], text.rsplit("Question:", 1)[1].strip())
    if kind == "rubric":
        m = _IMGEDIT_INSTR_RE.search(text + "\n")
        dims = [d.strip() for d in _DIM_RE.findall(text)]
        values, why = backend.rubric(images[0], images[1], m.group(1).strip() if m else "", dims)
        lines = [f"Brief reasoning: {why}"] + [f"{d}: {int(v)}" for d, v in zip(dims, values, strict=True)]
        return kind, "\n".join(lines)
    return kind, "I can only evaluate the image evaluation prompts I was set up for."


def _out_of_range(kind: str, text: str) -> str:
    if kind == "vqa":
        return "maybe"
    if kind == "rubric":
        return re.sub(r": \d+$", ": 9", text, flags=re.M)
    n = {"edit_sc": 2, "pq": 2}.get(kind, 1)
    return json.dumps({"score": [12] * n, "reasoning": "out of range on purpose"})


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("judge-server: " + fmt, *args)

    def _send(self, code: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _body(self) -> dict[str, Any]:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b"{}"
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            raise DataError("request body is not JSON") from None
        if not isinstance(body, dict):
            raise DataError("request body must be a JSON object")
        return body

    def do_GET(self) -> None:  # noqa: N802
        srv = self.server
        path = self.path.rstrip("/")
        if path in ("/v2/health/ready", "/v2/health/live", "/health"):
            return self._send(200, {"ready": True, "live": True})
        if path == "/v1/models":
            return self._send(200, {"object": "list", "data": [{"id": srv.model, "object": "model",
                                                                  "owned_by": "unipic"}]})
        if path == "/admin/stats":
            return self._send(200, srv.state.snapshot())
        m = re.fullmatch(r"/v2/models/([^/]+)(/ready)?", path)
        if m:
            if m.group(1) != srv.scorer_name:
                return self._send(404, {"error": f"model {m.group(1)} not found"})
            if m.group(2):
                return self._send(200, {"name": srv.scorer_name, "ready": True})
            return self._send(200, {"name": srv.scorer_name, "platform": "unipic", "versions": ["1"],
                                    "inputs": [{"name": "image", "datatype": "BYTES", "shape": [-1]},
                                               {"name": "text", "datatype": "BYTES", "shape": [-1]},
                                               {"name": "source", "datatype": "BYTES", "shape": [-1]}],
                                    "outputs": [{"name": "score", "datatype": "FP32", "shape": [-1]}]})
        return self._send(404, {"error": f"no route GET {self.path}"})

    def do_POST(self) -> None:  # noqa: N802
        srv = self.server
        path = self.path.rstrip("/")
        try:
            body = self._body()
        except DataError as exc:
            return self._send(400, {"error": str(exc)})
        if path == "/admin/faults":
            try:
                srv.state.faults.update(body)
            except DataError as exc:
                return self._send(400, {"error": str(exc)})
            return self._send(200, asdict(srv.state.faults))
        if srv.api_key and self.headers.get("Authorization") != f"Bearer {srv.api_key}":
            return self._send(401, {"error": {"message": "invalid API key", "type": "authentication_error"}})
        if path in ("/v1/chat/completions", "/openai/v1/chat/completions"):
            return self._guarded("chat", lambda: self._chat(body))
        m = re.fullmatch(r"/v2/models/([^/]+)/infer", path)
        if m:
            if m.group(1) != srv.scorer_name:
                return self._send(404, {"error": f"model {m.group(1)} not found"})
            return self._guarded("infer", lambda: self._infer(body))
        return self._send(404, {"error": f"no route POST {self.path}"})

    def _guarded(self, kind: str, handle: Any) -> None:
        state = self.server.state
        n, u = state.enter(kind)
        try:
            f = state.faults
            if f.delay_s:
                time.sleep(f.delay_s)
            fault = _choose_fault(f, n, u)
            if fault == "error":
                state.served("error")
                return self._send(503, {"error": "simulated overload"},
                                  {"Retry-After": str(f.retry_after_s)} if f.retry_after_s else None)
            if fault == "timeout":
                state.served("timeout")
                time.sleep(f.hang_s)
            self._fault = fault
            try:
                code, out = handle()
            except DataError as exc:
                return self._send(400, {"error": str(exc)})
            return self._send(code, out)
        finally:
            state.leave()

    def _chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        srv = self.server
        if body.get("model") != srv.model:
            return 404, {"error": {"message": f"The model `{body.get('model')}` does not exist.",
                                   "type": "NotFoundError"}}
        text, images = _split_content(body.get("messages") or [])
        kind, answer = answer_chat(srv.backend, text, images)
        if self._fault == "garbage":
            srv.state.served("garbage")
            answer = GARBAGE
        elif self._fault == "out_of_range" and kind != "unknown":
            srv.state.served("out_of_range")
            answer = _out_of_range(kind, answer)
        return 200, {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
            "model": srv.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(text.split()), "completion_tokens": len(answer.split()),
                      "total_tokens": len(text.split()) + len(answer.split())},
        }

    def _infer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        srv = self.server
        inputs = {i.get("name"): i for i in body.get("inputs") or [] if isinstance(i, dict)}
        if "image" not in inputs:
            raise DataError("the infer request needs a BYTES input named 'image'")
        for name, inp in inputs.items():
            if inp.get("datatype") != "BYTES":
                raise DataError(f"input '{name}' must have datatype BYTES, got {inp.get('datatype')!r}")
        images = [decode_b64_image(x) for x in inputs["image"]["data"]]
        texts = inputs.get("text", {}).get("data")
        sources = [decode_b64_image(x) for x in inputs["source"]["data"]] if "source" in inputs else None
        for name, vals in (("text", texts), ("source", sources)):
            if vals is not None and len(vals) != len(images):
                raise DataError(f"input '{name}' has {len(vals)} items, 'image' has {len(images)}")
        scores = [srv.backend.score(img, None if texts is None else texts[i],
                                    None if sources is None else sources[i]) for i, img in enumerate(images)]
        if self._fault == "garbage":
            srv.state.served("garbage")
            return 200, {"model_name": srv.scorer_name, "outputs": [{"name": "oops", "datatype": "BYTES",
                                                                     "shape": [1], "data": ["?"]}]}
        if self._fault == "out_of_range":
            srv.state.served("out_of_range")
            scores = [7.5] * len(scores)
        return 200, {"model_name": srv.scorer_name, "id": body.get("id", uuid.uuid4().hex),
                     "outputs": [{"name": "score", "datatype": "FP32", "shape": [len(scores)], "data": scores}]}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], backend: JudgeBackend, model: str, scorer_name: str,
                 faults: Faults, api_key: str | None):
        super().__init__(addr, _Handler)
        self.backend, self.model, self.scorer_name, self.api_key = backend, model, scorer_name, api_key
        self.state = _State(faults)


class LocalJudgeServer:
    """Run the judge server in a background thread: `with LocalJudgeServer() as srv: srv.openai_base_url`."""

    def __init__(self, backend: JudgeBackend | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 model: str = "shapesworld-judge", scorer_name: str = "shapesworld-scorer",
                 faults: Faults | None = None, api_key: str | None = None):
        if backend is None:
            from unipic.judges.shapes_backend import ShapesWorldBackend

            backend = ShapesWorldBackend()
        self._server = _Server((host, port), backend, model, scorer_name, faults or Faults(), api_key)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self._server.server_address[0]

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def faults(self) -> Faults:
        return self._server.state.faults

    def stats(self) -> dict[str, Any]:
        return self._server.state.snapshot()

    def start(self) -> LocalJudgeServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="judge-server", daemon=True)
        self._thread.start()
        log.info("local judge server on %s (model %s, scorer %s)", self.base_url, self._server.model,
                 self._server.scorer_name)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> LocalJudgeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """`python -m unipic.judges.local_server --port 18480`: serve until interrupted."""
    from unipic.logging import setup_logging

    setup_logging()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=18480)
    p.add_argument("--model", default="shapesworld-judge")
    p.add_argument("--scorer-name", default="shapesworld-scorer")
    p.add_argument("--api-key-env", default=None, help="require this env var's value as the Bearer key")
    p.add_argument("--garbage-rate", type=float, default=0.0)
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--timeout-rate", type=float, default=0.0)
    args = p.parse_args(argv)
    import os

    key = os.environ.get(args.api_key_env) if args.api_key_env else None
    srv = LocalJudgeServer(host=args.host, port=args.port, model=args.model, scorer_name=args.scorer_name,
                           faults=Faults(garbage_rate=args.garbage_rate, error_rate=args.error_rate,
                                         timeout_rate=args.timeout_rate), api_key=key)
    log.info("serving on %s; Ctrl-C to stop", srv.base_url)
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)  # a parent that ignores SIGINT passes that on
    try:
        srv._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv._server.server_close()


if __name__ == "__main__":
    main()
