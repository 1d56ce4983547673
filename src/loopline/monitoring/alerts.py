"""Alert delivery to webhooks: a JSON POST, retried with exponential backoff.

A 2xx answer delivers; a 5xx, 408, 429 or a connection error is retried (waiting
``backoff``, then twice that, ...); any other answer fails at once.

>>> check_webhook("https://hooks.example.com/x")
'https://hooks.example.com/x'
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from loopline.errors import InvalidArgumentError

__all__ = ["Delivery", "check_webhook", "deliver"]

_RETRY_STATUS = {408, 429}


@dataclass(frozen=True, slots=True)
class Delivery:
    ok: bool
    attempts: int
    error: str = ""


def check_webhook(url: str) -> str:
    """The URL, when it is an http(s) URL with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgumentError(
            f"{url!r} is not a webhook URL", hint="give an http:// or https:// URL"
        )
    return url


def deliver(
    url: str,
    payload: dict[str, Any],
    *,
    attempts: int = 4,
    backoff: float = 0.5,
    timeout: float = 10.0,
) -> Delivery:
    """POST ``payload`` as JSON to ``url``; retries transient failures."""
    import httpx

    error = ""
    with httpx.Client(timeout=timeout) as client:
        for attempt in range(1, attempts + 1):
            try:
                response = client.post(url, json=payload)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return Delivery(True, attempt)
                error = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code not in _RETRY_STATUS:
                    return Delivery(False, attempt, error)
            if attempt < attempts:
                time.sleep(backoff * 2 ** (attempt - 1))
    return Delivery(False, attempts, error)
