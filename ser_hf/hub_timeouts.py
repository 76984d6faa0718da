"""How ser-hf talks to the Hub: no request waits forever.

``huggingface_hub`` sends most Hub API calls (``create_repo``, ``create_commit``, ``repo_info``, ...) with no timeout,
so an endpoint that accepts the connection and never answers hangs ``ser-hf push`` for good. :func:`use_hub_timeout`
installs, through ``huggingface_hub``'s own hook for configuring its HTTP client (``set_client_factory``), a client
that gives every request without a timeout of its own ``SER_HF_HUB_TIMEOUT`` seconds (60 by default) to connect,
send, and for each read, and as long again, from its headers, for the whole of its answer (an endpoint that trickles
its answer a byte at a time passes every per-read limit and would hold a push for ever); requests that set a timeout
(file downloads: ``HF_HUB_ETAG_TIMEOUT``, ``HF_HUB_DOWNLOAD_TIMEOUT``) keep theirs, and no deadline on the answer
outside a push (:func:`answer_deadlines`).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import os
import time
from typing import Iterator

logger = logging.getLogger(__name__)

#: The environment variable that sets how long ser-hf waits for the Hub (seconds).
HUB_TIMEOUT_ENV = "SER_HF_HUB_TIMEOUT"
DEFAULT_HUB_TIMEOUT = 60.0
_TIMEOUT_KINDS = ("connect", "read", "write", "pool")


def hub_timeout() -> float:
    """The seconds a Hub request may wait to connect, send or read: ``SER_HF_HUB_TIMEOUT``, else 60."""
    value = os.environ.get(HUB_TIMEOUT_ENV, "").strip()
    if not value:
        return DEFAULT_HUB_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(
            f"{HUB_TIMEOUT_ENV}={value!r}: give the seconds to wait for the Hub, a positive number "
            f"(default {DEFAULT_HUB_TIMEOUT:g})."
        )
    return seconds


#: The attribute a request given ser-hf's timeout carries: the seconds its whole answer may take.
_ANSWER_DEADLINE = "_ser_hf_answer_seconds"


def _give_requests_a_timeout(request) -> None:
    """httpx request hook: every part of the request's timeout left unset (`None`) becomes :func:`hub_timeout`, and
    such a request's answer gets as long, in all, to arrive (:func:`_bound_the_answer`)."""
    timeout = dict(request.extensions.get("timeout") or {})
    if all(timeout.get(kind) is not None for kind in _TIMEOUT_KINDS):
        return
    seconds = hub_timeout()
    request.extensions = {
        **request.extensions,
        "timeout": {kind: seconds if timeout.get(kind) is None else timeout[kind] for kind in _TIMEOUT_KINDS},
    }
    setattr(request, _ANSWER_DEADLINE, seconds)


#: How many pushes are under way (:func:`answer_deadlines`): while one is, every answer has a deadline.
_PUSHES = 0


@contextlib.contextmanager
def answer_deadlines() -> Iterator[None]:
    """While a push runs, every answer the Hub sends, even to a request that set its own timeout (``huggingface_hub``'s
    own lookups), must arrive whole within :func:`hub_timeout` seconds of its headers: a push uploads, and what it
    reads back is small, so no answer has a reason to take longer (downloads, outside a push, keep their own
    limits). Threads of the push (its parallel uploads) are covered too."""
    global _PUSHES
    _PUSHES += 1
    try:
        yield
    finally:
        _PUSHES -= 1


def _bound_the_answer(response) -> None:
    """httpx response hook: the body of the answer to a request :func:`_give_requests_a_timeout` gave a timeout (to
    any request, while a push runs: :func:`answer_deadlines`) must arrive whole within that many seconds of its
    headers, or reading it raises the client's ``ReadTimeout``."""
    seconds = getattr(response.request, _ANSWER_DEADLINE, None)
    if seconds is None and _PUSHES:
        seconds = hub_timeout()
    if seconds is None:
        return
    client = importlib.import_module(type(response).__module__.split(".")[0])

    class AnswerWithDeadline(client.SyncByteStream):
        def __init__(self, stream):
            self.stream = stream

        def __iter__(self):
            deadline = time.monotonic() + seconds
            for chunk in self.stream:
                yield chunk
                if time.monotonic() > deadline:
                    raise client.ReadTimeout(
                        f"the answer took longer than {seconds:g} s to arrive whole", request=response.request
                    )

        def close(self):
            self.stream.close()

    response.stream = AnswerWithDeadline(response.stream)


def _client_with_timeout():
    from huggingface_hub.utils._http import default_client_factory

    client = default_client_factory()
    client.event_hooks["request"].append(_give_requests_a_timeout)
    client.event_hooks["response"].append(_bound_the_answer)
    return client


def use_hub_timeout() -> None:
    """Make every request ``huggingface_hub`` sends without a timeout of its own wait at most :func:`hub_timeout`
    seconds (see the module docstring). It configures ``huggingface_hub``'s shared client for the process; a client
    factory the user installed (``huggingface_hub.set_client_factory``) is left as it is."""
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils import _http

    hub_timeout()  # a bad SER_HF_HUB_TIMEOUT is named now, not in the middle of a push
    current = getattr(_http, "_GLOBAL_CLIENT_FACTORY", None)
    if current is _client_with_timeout:
        return
    if current is not getattr(_http, "default_client_factory", None):
        logger.debug("huggingface_hub uses a client factory of its user's; %s is not applied.", HUB_TIMEOUT_ENV)
        return
    set_client_factory(_client_with_timeout)


def _error_classes(name: str) -> list[type[BaseException]]:
    """``name`` (``TransportError``, ``TimeoutException``) of the HTTP clients huggingface_hub may use (httpx2 for
    huggingface_hub 2, httpx before)."""
    classes = []
    for module in ("httpx2", "httpx"):
        try:
            classes.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            pass
    return classes


def transport_errors() -> tuple[type[BaseException], ...]:
    """The errors of a request that got no answer (no connection, a timeout)."""
    return (ConnectionError, TimeoutError, *_error_classes("TransportError"))


def is_timeout(error: BaseException) -> bool:
    """Whether ``error`` is a request that timed out (the Hub accepted the connection, or not, and never answered)."""
    return isinstance(error, (TimeoutError, *_error_classes("TimeoutException")))


__all__ = [
    "DEFAULT_HUB_TIMEOUT",
    "answer_deadlines",
    "HUB_TIMEOUT_ENV",
    "hub_timeout",
    "is_timeout",
    "transport_errors",
    "use_hub_timeout",
]
