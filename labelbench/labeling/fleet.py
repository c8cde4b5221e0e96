"""A fleet of OpenAI-compatible servers of one model (``labelbench.labeling.chat_backend``).

Each request goes to the server with the fewest requests in flight (then the fewest sent); a
failed request (timeout, dropped connection, 408, 409, 425, 429, 5xx, a reply that is not a chat
completion) takes its server out of rotation for a back-off (its ``Retry-After``, at most
``max_retry_after`` seconds, when it sends one) and is retried on another. The ``openai`` client
does the transport, timeouts and reply parsing; its own retries are off because they would retry
on the same server.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from labelbench.errors import ModelError
from labelbench.labeling.http_backend import RETRY_STATUS, _retry_after, _snippet

log = logging.getLogger(__name__)


@dataclass
class _Server:
    """One server of the fleet: its client and what it has in flight, sent and failed."""

    url: str
    client: Any
    in_flight: int = 0
    sent: int = 0
    failures: int = 0
    down_until: float = 0.0


class Fleet:
    """OpenAI clients for one or more servers of the same model, each request sent to the least
    loaded server in rotation; failures drain a server for a back-off and retry elsewhere."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        api_key: str | None,
        timeout: float,
        max_retries: int,
        backoff: float,
        max_backoff: float,
        max_retry_after: float,
        client_factory: Callable[..., Any] | None = None,
    ) -> None:
        if client_factory is None:
            try:
                from openai import OpenAI
            except ImportError as error:
                raise ModelError(
                    "the chat backend needs the openai package: pip install 'labelbench[server]'"
                ) from error
            client_factory = OpenAI
        self.servers = [
            _Server(
                url.rstrip("/"),
                client_factory(
                    base_url=url.rstrip("/"),
                    api_key=api_key or "none",  # a local server without a key: any text
                    timeout=timeout,
                    max_retries=0,  # retried here, on another server
                ),
            )
            for url in urls
        ]
        self._key = api_key
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.retries = 0
        self._lock = threading.Condition()

    def close(self) -> None:
        """Close every server's client."""
        for server in self.servers:
            close = getattr(server.client, "close", None)
            if close is not None:
                close()

    def _acquire(self) -> _Server:
        with self._lock:
            while True:
                now = time.monotonic()
                up = [s for s in self.servers if s.down_until <= now]
                if up:
                    server = min(up, key=lambda s: (s.in_flight, s.sent))
                    server.in_flight += 1
                    server.sent += 1
                    return server
                self._lock.wait(max(0.0, min(s.down_until for s in self.servers) - now))

    def _release(self, server: _Server, failure: str | None, wait: float | None) -> float:
        with self._lock:
            server.in_flight -= 1
            if failure is None:
                server.failures = 0
                self._lock.notify_all()
                return 0.0
            server.failures += 1
            if wait is None:
                wait = min(self.max_backoff, self.backoff * 2 ** (server.failures - 1))
                wait *= random.uniform(0.5, 1.0)
            server.down_until = max(server.down_until, time.monotonic() + wait)
            self._lock.notify_all()
            return wait

    def _clean(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """One chat completion as a dict, from the first server that answers. Raises ModelError,
        one line naming the server, for a reply that retrying cannot fix (401, 400, 404, an
        error object) or when ``max_retries`` retries fail."""
        import openai

        extra = {
            k: v
            for k, v in body.items()
            if k in ("continue_final_message", "add_generation_prompt", "top_k")
        }
        standard = {k: v for k, v in body.items() if k not in extra}
        failure = "no attempt"
        for attempt in range(self.max_retries + 1):
            server = self._acquire()
            where = f"{server.url}/chat/completions"
            wait: float | None = None
            failure = ""
            try:
                reply = server.client.chat.completions.create(
                    **standard, **({"extra_body": extra} if extra else {})
                )
            except (openai.APITimeoutError, openai.APIConnectionError) as error:
                failure = type(error).__name__
            except openai.APIStatusError as error:
                status = error.status_code
                message = _snippet(self._clean(str(getattr(error, "message", error))))
                if status not in RETRY_STATUS:
                    self._release(server, None, None)
                    raise ModelError(f"{where} answered HTTP {status}: {message}") from None
                failure = f"HTTP {status}"
                headers = error.response.headers if error.response is not None else {}
                wait = _retry_after(headers.get("retry-after"), self.max_retry_after)
            else:
                value = reply.model_dump() if hasattr(reply, "model_dump") else reply
                if isinstance(value, dict) and value.get("error") and not value.get("choices"):
                    self._release(server, None, None)
                    error_value = value["error"]
                    text = (
                        error_value.get("message", error_value)
                        if isinstance(error_value, dict)
                        else error_value
                    )
                    raise ModelError(
                        f"{where} answered HTTP 200 with an error: "
                        f"{_snippet(self._clean(str(text)))}"
                    )
                choices = value.get("choices") if isinstance(value, dict) else None
                if isinstance(choices, list) and choices and isinstance(choices[0], dict):
                    self._release(server, None, None)
                    return value
                failure = f"a reply that is not a chat completion: {_snippet(str(value))}"
            waited = self._release(server, failure, wait)
            if attempt == self.max_retries:
                break
            self.retries += 1
            others = len(self.servers) > 1
            log.warning(
                "%s: %s; %s (retry %d), this server rests %.1fs",
                where,
                self._clean(failure),
                "retried on another server" if others else "retried",
                attempt + 1,
                waited,
            )
        urls = ", ".join(s.url for s in self.servers)
        raise ModelError(
            f"{urls}: a chat completion failed {self.max_retries + 1} times (last: "
            f"{self._clean(failure)})"
        )
