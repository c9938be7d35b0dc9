"""Credentials never reach a log line: the filter every log handler of the app carries.

Tokens are JWTs (``eyJ...``, three base64url segments); they could land in a log through
an old client's ``?token=`` (uvicorn logs every path with its query), the handshake headers
uvicorn logs at debug (``Sec-WebSocket-Protocol: liveshop, token.<token>``), a Bearer
header, or an exception's text; a stream key (``lsk_...``, ``web/stream_keys.py``) likewise.
``RedactSecrets`` replaces each with ``[redacted]`` in the
message, the exception text and any string extra, before a formatter sees the record.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

_SECRETS = re.compile(
    r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"  # a JWT, whatever surrounds it
    r"|(?<=[?&;]token=)[^\s&#\"']+"  # a token in a query string, JWT or not
    r"|(?<=[Bb]earer )[^\s\"',]+"  # an Authorization header's value
    r"|lsk_[A-Za-z0-9_-]+"  # a stream key, wherever it is
)


def redact(text: str) -> str:
    """``text`` with every credential in it replaced by ``[redacted]``."""
    if "eyJ" not in text and "token=" not in text and "earer " not in text and "lsk_" not in text:
        return text  # (the common case: a scan for four substrings, no regex)
    return _SECRETS.sub(REDACTED, text)


class RedactSecrets(logging.Filter):
    """A handler filter (a logger's filter would miss the records its children propagate)."""

    _plain = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # (a bad format: logging reports it itself later)
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._plain.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        for name, value in vars(record).items():
            if isinstance(value, str) and name not in ("msg", "exc_text"):
                setattr(record, name, redact(value))
        return True
