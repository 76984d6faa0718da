"""Keeping Hub tokens out of what ser-hf prints and logs.

A Hub (or a proxy in front of it) may echo a request's ``Authorization`` header in an error body, which
``huggingface_hub`` puts in its exception's message. :func:`redact_tokens` replaces every token-shaped string in a
text: the user's own token (``HF_TOKEN``, the token saved by ``hf auth login``), anything that follows ``Bearer``,
and Hugging Face tokens (``hf_...``, ``api_org_...``). The command line prints its errors through it and adds
:class:`TokenRedactingFilter` to its log handlers, so that records of every logger (ser-hf's, ``huggingface_hub``'s,
``transformers``') are redacted too.
"""

from __future__ import annotations

import logging
import re
from typing import Iterable, Optional

#: What a token is replaced with (``huggingface_hub``'s own marker in its debug logs).
REDACTED = "<REDACTED>"
_TOKEN_PATTERNS = (
    re.compile(r"(?i)(\bBearer\s+)[^\s'\",;]{8,}"),
    re.compile(r"\b(?:hf|api_org)_[A-Za-z0-9]{16,}\b"),
)


def _user_tokens() -> list[str]:
    from huggingface_hub import get_token

    token = get_token()
    return [token] if token else []


def redact_tokens(text: str, tokens: Optional[Iterable[str]] = None) -> str:
    """``text`` with every token-shaped string replaced by ``<REDACTED>``.

    Args:
        text (`str`): a message.
        tokens (`Iterable[str]`, *optional*): the tokens to remove besides the patterns; defaults to the user's
            token as ``huggingface_hub`` finds it.
    """
    for token in _user_tokens() if tokens is None else tokens:
        if token:
            text = text.replace(token, REDACTED)
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(lambda match: (match.group(1) if match.lastindex else "") + REDACTED, text)
    return text


class TokenRedactingFilter(logging.Filter):
    """A log filter that redacts tokens (see :func:`redact_tokens`) from every record it sees. Add it to a handler
    (``handler.addFilter(TokenRedactingFilter())``) to cover the records of every logger that reaches it; the user's
    token is read once, when the filter is made."""

    def __init__(self, tokens: Optional[Iterable[str]] = None):
        super().__init__()
        self.tokens = list(_user_tokens() if tokens is None else tokens)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_tokens(message, self.tokens)
        if record.exc_info and record.exc_info[1] is not None:
            # The traceback's last line is the exception's message: format it here, redacted, once.
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact_tokens(formatted, self.tokens)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact_tokens(record.exc_text, self.tokens)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def redact_log_handlers(logger: Optional[logging.Logger] = None) -> None:
    """Add a :class:`TokenRedactingFilter` to every handler of ``logger`` (the root logger by default) that has
    none."""
    logger = logger or logging.getLogger()
    redacting = TokenRedactingFilter()
    for handler in logger.handlers:
        if not any(isinstance(existing, TokenRedactingFilter) for existing in handler.filters):
            handler.addFilter(redacting)


__all__ = ["REDACTED", "TokenRedactingFilter", "redact_log_handlers", "redact_tokens"]
