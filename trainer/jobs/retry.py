"""One retry policy for every HTTP client of this project (teacher server, prediction server).

Retried: transport failures (connection refused or reset, a server closing the connection, timeouts) and HTTP 429
and 5xx answers: what a restarting or overloaded server gives. Anything else (a 4xx, a malformed response, a bug)
is raised at once, so retries never hide an error that another attempt cannot fix. A 429 or 503 that says when to
come back (`Retry-After`: seconds or an HTTP date) is waited for, up to `MAX_RETRY_AFTER`: a rate limiter's own
clock, not ours, decides when a request can succeed.
"""

import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_DELAY = 30.0
MAX_RETRY_AFTER = 300.0  # a server asking for longer is waited for this long, then asked again


# Transport failures by class name: huggingface_hub brings `httpx` (1.x) or `httpx2` (2.x), whose `TransportError`
# covers connection, protocol and timeout errors; `InferenceTimeoutError` is huggingface_hub's own timeout.
TRANSPORT_ERRORS = ("TransportError", "InferenceTimeoutError")


def is_retryable(error: BaseException) -> bool:
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status is not None:
        return status == 429 or status >= 500
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    return any(cls.__name__ in TRANSPORT_ERRORS for cls in type(error).__mro__)


def retry_after(error: BaseException) -> float | None:
    """Seconds a 429 or 503 answer asked the client to wait (`Retry-After`), capped at `MAX_RETRY_AFTER`; None
    where it did not say (or said something unreadable)."""
    response = getattr(error, "response", None)
    if getattr(response, "status_code", None) not in (429, 503):
        return None
    value = (getattr(response, "headers", None) or {}).get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def http_client(timeout: float, headers: dict[str, str]):
    """An HTTP client from the httpx generation huggingface_hub installed (no extra dependency)."""
    try:
        import httpx2 as httpx
    except ImportError:
        import httpx
    return httpx.Client(timeout=timeout, headers=headers)


class ServerUnavailable(RuntimeError):
    """A server kept failing with retryable errors until the retries ran out."""


class ServerError(RuntimeError):
    """An HTTP error answer, with what the server said; `response` lets `is_retryable` read its status."""

    def __init__(self, message: str, response) -> None:
        super().__init__(message)
        self.response = response


def checked(response, server: str):
    """`response`, or a `ServerError` naming the server, the status and the server's own explanation (an OpenAI-style
    `{"error": {"message": ...}}`, else the start of the body): "model `x` does not exist" says what to fix, a bare
    "404 Not Found" does not."""
    if response.status_code < 400:
        return response
    try:
        said = response.json()
        said = said.get("error", said) if isinstance(said, dict) else said
        said = said.get("message", said) if isinstance(said, dict) else said
    except ValueError:
        said = response.text[:300]
    raise ServerError(f"{server} answered {response.status_code} {response.reason_phrase}: {said}", response)


def call_with_retries(request: Callable[[], T], max_retries: int, backoff: float, server: str) -> T:
    """`request()`, retried with exponential backoff (`backoff`, doubled, capped at 30 s) on retryable errors."""
    delay = backoff
    for attempt in range(max_retries + 1):
        try:
            return request()
        except Exception as error:
            if not is_retryable(error):
                raise
            if attempt == max_retries:
                raise ServerUnavailable(
                    f"{server}: still failing after {max_retries} retries ({type(error).__name__}: "
                    f"{str(error).splitlines()[0] if str(error) else 'no message'}); is the server running?"
                ) from error
            asked = retry_after(error)
            wait = delay if asked is None else max(delay, asked)
            said = "" if asked is None else f", as its Retry-After asked ({asked:g} s)"
            logger.warning(
                "Request to %s failed (%s); retry %d in %.1f s%s",
                server,
                type(error).__name__,
                attempt + 1,
                wait,
                said,
            )
            time.sleep(wait)
            delay = min(delay * 2, MAX_DELAY)
    raise AssertionError("unreachable")
