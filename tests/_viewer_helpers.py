"""Helpers for tests of the live viewer: plain HTTP requests and the login.

:func:`request` sends one request to a viewer on 127.0.0.1 (HTTPS when given a TLS
context); :func:`login` posts a token to ``/login`` and returns the session cookie.
"""

from __future__ import annotations

import http.client
import ssl
import urllib.parse
from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    """One HTTP response: its status, headers and body."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


def request(port: int, path: str, *, method: str = "GET", cookie: str = "", form: dict[str, str] | None = None,
            headers: dict[str, str] | None = None, tls: ssl.SSLContext | None = None) -> Reply:
    conn: http.client.HTTPConnection = (
        http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=60) if tls
        else http.client.HTTPConnection("127.0.0.1", port, timeout=60))
    hdrs = dict(headers or {})
    if cookie:
        hdrs["Cookie"] = cookie
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form)
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def login(port: int, token: str, tls: ssl.SSLContext | None = None) -> tuple[str, str]:
    """(the ``name=value`` to send back, the whole Set-Cookie header)."""
    r = request(port, "/login", method="POST", form={"token": token, "next": "/"}, tls=tls)
    assert r.status == 303, r.text
    set_cookie = r.headers["Set-Cookie"]
    return set_cookie.split(";")[0], set_cookie
