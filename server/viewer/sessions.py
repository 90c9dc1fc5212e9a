"""The viewer's login sessions: a token presented once, then a random session id in a cookie.

With tokens configured, the login page takes the read-only or the admin token (both may
read, and the viewer only reads). A valid token opens a session: a random id
(:func:`secrets.token_urlsafe`, 256 bits) kept in memory with its expiry, sent back as the
:data:`COOKIE` cookie (``HttpOnly``, ``SameSite=Strict``, ``Path=/``, and ``Secure`` when the
viewer serves TLS). The token itself is never stored in the cookie nor anywhere else.
Sessions live :data:`SESSION_TTL_S` and end with the process: after a restart, log in again.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

COOKIE = "gmai_eval_session"
"""Name of the session cookie."""
SESSION_TTL_S = 12 * 3600
"""A session's lifetime, in seconds."""
MAX_SESSIONS = 1000
"""Sessions kept at most; the oldest are dropped first."""


class Tokens(Protocol):
    """What the viewer needs of the API's token configuration (``api.auth.TokenConfig``)."""

    @property
    def enabled(self) -> bool:
        """Whether any token is configured (off: no login, everything open)."""

    def role_of(self, token: str) -> object | None:
        """The role of a presented token, or None when it matches none."""


@dataclass
class Sessions:
    """Open sessions: id -> expiry (monotonic seconds)."""

    tokens: Tokens
    """The configured tokens."""
    clock: Callable[[], float] = time.monotonic
    """Monotonic seconds (tests pass their own)."""
    _expiry: dict[str, float] = field(default_factory=dict)

    @property
    def required(self) -> bool:
        """Whether a session is needed (tokens configured)."""
        return self.tokens.enabled

    def login(self, token: str) -> str | None:
        """A new session id when ``token`` is a configured token (read-only or admin), else None."""
        if not token or self.tokens.role_of(token.strip()) is None:
            return None
        now = self.clock()
        self._drop_expired(now)
        while len(self._expiry) >= MAX_SESSIONS:
            del self._expiry[min(self._expiry, key=self._expiry.__getitem__)]
        sid = secrets.token_urlsafe(32)
        self._expiry[sid] = now + SESSION_TTL_S
        return sid

    def valid(self, sid: str | None) -> bool:
        """Whether ``sid`` is an open, unexpired session."""
        if not sid:
            return False
        expiry = self._expiry.get(sid)
        if expiry is None:
            return False
        if expiry <= self.clock():
            del self._expiry[sid]
            return False
        return True

    def logout(self, sid: str | None) -> None:
        """End the session ``sid`` (nothing when unknown)."""
        if sid:
            self._expiry.pop(sid, None)

    def _drop_expired(self, now: float) -> None:
        for sid in [s for s, t in self._expiry.items() if t <= now]:
            del self._expiry[sid]


def safe_next(target: str | None) -> str:
    """Where to go after the login: a path of this site only (no scheme, no other host), else ``/``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
