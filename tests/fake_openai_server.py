"""A small OpenAI-compatible completions server for tests, with fault injection.

Answers are a deterministic function of the request body, so a run through faults must end with
the labels of a clean run. ``python tests/fake_openai_server.py --port 0`` prints ``PORT <n>``.

Faults follow a per-prompt attempt counter, so each prompt sees the same faults whatever the
request concurrency: with ``--fail-first K`` the first K attempts at every prompt fail, cycling
through 429, 500 and a stall (a reply delayed by ``--stall-seconds``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKENS = ["1", "2", " the", " because", " summary", " is", " better", ".", "\n", " A", " B"]
FAULTS = ("429", "500", "stall")


def _unit(*parts: Any) -> float:
    """A number in [0, 1) from the parts' content."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def top_logprobs(
    prompt: str, count: int, missing_marker: str, weights: str = ""
) -> dict[str, float]:
    """Log-probabilities of the first next token, from the prompt's content (and ``weights``,
    which stands for the served model: servers with other weights answer differently)."""
    raw = {token: 4.0 * _unit(prompt, token, *([weights] if weights else [])) for token in TOKENS}
    top = max(raw.values())
    norm = top + math.log(sum(math.exp(v - top) for v in raw.values()))
    ranked = sorted(((v - norm, t) for t, v in raw.items()), reverse=True)
    chosen = {token: value for value, token in ranked[:count]}
    if missing_marker and isinstance(prompt, str) and missing_marker in prompt:
        chosen.pop("2", None)  # an answer token outside the returned top logprobs
    return chosen


def completion(
    body: dict[str, Any], missing_marker: str, weights: str = "", ignore_n: bool = False
) -> dict[str, Any]:
    prompt = body["prompt"]
    max_tokens = int(body.get("max_tokens", 16))
    count = int(body.get("logprobs") or 0)
    choices = []
    for index in range(1 if ignore_n else int(body.get("n", 1))):
        if max_tokens == 1:
            top = top_logprobs(prompt, max(count, 1), missing_marker, weights)
            text = max(top, key=top.__getitem__)
        else:
            words = int(3 + 5 * _unit(prompt, body.get("seed"), index, body.get("temperature")))
            text = "".join(
                TOKENS[2 + int(7 * _unit(prompt, body.get("seed"), index, w))] for w in range(words)
            )
            top = {}
        logprobs = {"tokens": [text], "top_logprobs": [top]} if count else None
        choices.append(
            {"index": index, "text": text, "logprobs": logprobs, "finish_reason": "length"}
        )
    prompt_tokens = len(prompt) if isinstance(prompt, list) else len(prompt.split())
    return {
        "id": "cmpl-fake",
        "object": "text_completion",
        "model": body.get("model", "fake"),
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": 4 * len(choices),
            "total_tokens": prompt_tokens + 4 * len(choices),
        },
    }


CHAT_TOKENS = ["1", " 2", "2", "The", "**", " A", "[[", "Pre", "I"]
UNPARSEABLE = "[no-verdict]"  # a user message holding it gets a reply without a verdict
REFUSE = "[refuse]"  # ... a refusal (content null, message.refusal set)
ENDING_LINE = re.compile(r'one last line that gives your answer: "(.*?)1"')


def _token_entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


def chat_completion(
    body: dict[str, Any],
    missing_marker: str,
    weights: str = "",
    ignore_n: bool = False,
    logprobs_supported: bool = True,
) -> dict[str, Any]:
    """A reply shaped as OpenAI documents ``chat.completion`` objects, a deterministic function
    of the messages (and ``seed`` and the choice index when sampling)."""
    messages = body["messages"]
    text = json.dumps(messages, sort_keys=True)
    user = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    raw = {t: 4.0 * _unit(text, t, *([weights] if weights else [])) for t in CHAT_TOKENS}
    top = max(raw.values())
    norm = top + math.log(sum(math.exp(v - top) for v in raw.values()))
    ranked = sorted(((v - norm, t) for t, v in raw.items()), reverse=True)
    if missing_marker and missing_marker in text:
        ranked = [(v, t) for v, t in ranked if t.strip() != "2"]
    count = int(body.get("top_logprobs") or 0)
    max_tokens = int(body.get("max_tokens") or 16)
    temperature = float(body.get("temperature", 1.0))
    ending = ENDING_LINE.search(user)
    prompt_tokens = len(text.split())
    choices = []
    for index in range(1 if ignore_n else int(body.get("n") or 1)):
        p_one = math.exp(raw["1"]) / (math.exp(raw["1"]) + math.exp(raw["2"]))
        if temperature > 0:
            answer = "1" if _unit(text, body.get("seed"), index) < p_one else "2"
        else:
            answer = "1" if p_one >= 0.5 else "2"
        message: dict[str, Any] = {"role": "assistant", "refusal": None, "annotations": []}
        if REFUSE in user:
            message |= {"content": None, "refusal": "I'm sorry, I can't help with that."}
        elif max_tokens == 1:
            message["content"] = ranked[0][1]
        elif UNPARSEABLE in user:
            message["content"] = "Both summaries have merits; it is hard to say."
        elif ending is not None or max_tokens > 16:
            words = int(3 + 5 * _unit(text, body.get("seed"), index))
            rationale = " ".join(["summary", "one", "is", "clearer"][w % 4] for w in range(words))
            line = f"\n{ending.group(1)}{answer}" if ending is not None else ""
            message["content"] = f" {rationale}.{line}"
        else:
            style = int(3 * _unit(text, "style"))
            message["content"] = [answer, f"[[{answer}]]", f"Preferred Summary={answer}"][style]
        logprobs = None
        if body.get("logprobs") and logprobs_supported and message.get("content") is not None:
            first = ranked[0]
            logprobs = {
                "content": [
                    {
                        **_token_entry(first[1], first[0]),
                        "top_logprobs": [_token_entry(t, v) for v, t in ranked[:count]],
                    }
                ],
                "refusal": None,
            }
        choices.append(
            {
                "index": index,
                "message": message,
                "logprobs": logprobs,
                "finish_reason": "length" if max_tokens == 1 else "stop",
            }
        )
    generated = sum(max(1, len((c["message"].get("content") or "").split())) for c in choices)
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1700000000,
        "model": body.get("model", "fake"),
        "system_fingerprint": "fp_fake",
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": generated,
            "total_tokens": prompt_tokens + generated,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
    }


def _chat_shape(answer: dict[str, Any]) -> dict[str, Any]:
    choices = [
        {"index": c["index"], "message": {"role": "assistant", "content": c["text"]}}
        for c in answer["choices"]
    ]
    return {**answer, "object": "chat.completion", "choices": choices}


MALFORMED = {  # HTTP 200 bodies that are not a completions reply
    "empty-choices": lambda answer: {**answer, "choices": []},
    "html": lambda answer: "<html><body><h1>502 Bad Gateway</h1></body></html>",
    "error": lambda answer: {"error": {"message": "model is loading", "code": 503}},
    "null-logprobs": lambda answer: {
        **answer,
        "choices": [{**c, "logprobs": None} for c in answer["choices"]],
    },
    "chat-shape": _chat_shape,
}


def make_server(
    port: int,
    *,
    fail_first: int = 0,
    stall_seconds: float = 3.0,
    api_key: str | None = None,
    missing_marker: str = "",
    weights: str = "",
    ignore_n: bool = False,
    reply: str = "ok",
    retry_after: str = "0",
    chat_logprobs: bool = True,
    down: bool = False,
    refuse_token_ids: bool = False,
) -> ThreadingHTTPServer:
    """A server on 127.0.0.1:``port``; ``server.completions`` counts the completions answered,
    ``server.prompts`` lists their prompts (chat: ``server.bodies`` the request bodies).
    ``reply`` other than ``ok`` answers every request with HTTP 200 and a malformed body
    (``MALFORMED``); ``retry_after`` is the 429s' header. ``/v1/chat/completions`` answers
    ``chat_completion`` replies (``chat_logprobs=False``: a hosted API without log-probabilities);
    ``down``: every request is answered HTTP 503; ``refuse_token_ids``: a prompt of token ids is
    answered HTTP 500, as llama-cpp-python's server does."""
    attempts: dict[str, int] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            return

        def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            if down:
                self._reply(503, {"error": {"message": "unavailable"}})
                return
            if self.path not in ("/v1/completions", "/v1/chat/completions"):
                self._reply(404, {"error": {"message": "not found"}})
                return
            if api_key is not None and self.headers.get("Authorization") != f"Bearer {api_key}":
                self._reply(401, {"error": {"message": "bad key"}})
                return
            if refuse_token_ids and isinstance(body.get("prompt"), list):
                self._reply(500, {"error": {"message": "prompt must be a string"}})
                return
            key = json.dumps(body, sort_keys=True)
            with lock:
                attempt = attempts.get(key, 0)
                attempts[key] = attempt + 1
            if attempt < fail_first:
                fault = FAULTS[attempt % len(FAULTS)]
                if fault == "429":
                    headers = {"Retry-After": retry_after}
                    self._reply(429, {"error": {"message": "slow down"}}, headers)
                    return
                if fault == "500":
                    self._reply(500, {"error": {"message": "internal error"}})
                    return
                time.sleep(stall_seconds)
            if self.path == "/v1/chat/completions":
                with lock:
                    server.completions += 1
                    server.bodies.append(body)
                answer = chat_completion(body, missing_marker, weights, ignore_n, chat_logprobs)
                self._reply(200, answer if reply == "ok" else MALFORMED[reply](answer))
                return
            with lock:
                server.completions += 1
                server.prompts.append(body["prompt"])
            answer = completion(body, missing_marker, weights, ignore_n)
            if reply != "ok":
                self._reply(200, MALFORMED[reply](answer))
                return
            self._reply(200, answer)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.completions = 0
    server.prompts = []  # every prompt answered: a string, or token ids
    server.bodies = []  # every chat request answered
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--stall-seconds", type=float, default=3.0)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--missing-marker", default="")
    parser.add_argument("--weights", default="", help="stands for the served model's weights")
    parser.add_argument(
        "--ignore-n", action="store_true", help="one choice a request, as llama-cpp-python"
    )
    parser.add_argument(
        "--refuse-token-ids", action="store_true", help="HTTP 500 to token-id prompts"
    )
    args = parser.parse_args()
    server = make_server(
        args.port,
        fail_first=args.fail_first,
        stall_seconds=args.stall_seconds,
        api_key=args.api_key,
        missing_marker=args.missing_marker,
        weights=args.weights,
        ignore_n=args.ignore_n,
        refuse_token_ids=args.refuse_token_ids,
    )
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
