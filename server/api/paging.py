"""Page tokens for list RPCs: an opaque cursor bound to the filters it was issued for.

A token carries the sort key of the last item of the page (so items created between two
calls never shift a page) and the filters of the request; a token used with other filters,
or one that was edited, is refused as INVALID_ARGUMENT. Tokens are not secret: they only
say where a listing stopped.
"""

from __future__ import annotations

import base64
import binascii
import json

from gmai_eval.server.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 100
"""Items per page when the request leaves page_size at 0."""

MAX_PAGE_SIZE = 1000
"""The largest page served, whatever the request asks."""

_VERSION = 1


def encode(cursor: tuple[str, str], scope: tuple[str, ...]) -> str:
    """The token that continues a listing after ``cursor`` under the filters ``scope``."""
    raw = json.dumps({"v": _VERSION, "after": list(cursor), "scope": list(scope)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str, scope: tuple[str, ...]) -> tuple[str, str]:
    """The cursor in ``token``.

    Raises:
        InvalidArgument: the token is malformed or was issued for other filters.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        after = data["after"]
        ok = data.get("v") == _VERSION and isinstance(after, list) and len(after) == 2
        ok = ok and all(isinstance(x, str) for x in after)
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise InvalidArgument("page_token is not a token this evaluator issued")
    if data.get("scope") != list(scope):
        raise InvalidArgument("page_token was issued for other filters (model, benchmark)")
    return after[0], after[1]
