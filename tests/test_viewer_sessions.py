"""The viewer's sessions with an injected clock: expiry, sign-out, the cap, and where a login may lead."""

from __future__ import annotations

import pytest
from gmai_eval.server.api.auth import TokenConfig
from gmai_eval.server.viewer.sessions import MAX_SESSIONS, SESSION_TTL_S, Sessions, safe_next

from tests._service_helpers import ADMIN_TOKEN, READ_TOKEN


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sessions(clock: Clock) -> Sessions:
    return Sessions(TokenConfig(admin_token=ADMIN_TOKEN, read_token=READ_TOKEN), clock)


def test_either_token_opens_a_session_and_nothing_else_does(sessions: Sessions) -> None:
    read, admin = sessions.login(READ_TOKEN), sessions.login(ADMIN_TOKEN)
    assert read and admin and read != admin
    assert READ_TOKEN not in read and ADMIN_TOKEN not in admin
    assert len(read) >= 43  # 32 random bytes, URL-safe base64
    assert sessions.valid(read) and sessions.valid(admin)
    for wrong in ("", READ_TOKEN[:-1], READ_TOKEN + "x", "read-token"):
        assert sessions.login(wrong) is None
    assert not sessions.valid(None) and not sessions.valid("") and not sessions.valid("made-up")


def test_a_session_ends_after_its_lifetime_or_at_sign_out(sessions: Sessions, clock: Clock) -> None:
    sid = sessions.login(READ_TOKEN)
    clock.now += SESSION_TTL_S - 1
    assert sessions.valid(sid)
    clock.now += 1
    assert not sessions.valid(sid)
    other = sessions.login(READ_TOKEN)
    sessions.logout(other)
    assert not sessions.valid(other)
    sessions.logout("never-existed")  # nothing happens


def test_the_oldest_sessions_go_first_past_the_cap(sessions: Sessions, clock: Clock) -> None:
    first = sessions.login(READ_TOKEN)
    clock.now += 1
    second = sessions.login(READ_TOKEN)
    for _ in range(MAX_SESSIONS - 1):
        clock.now += 0.001
        sessions.login(READ_TOKEN)
    assert not sessions.valid(first) and sessions.valid(second)


def test_without_tokens_no_session_is_needed_or_possible(clock: Clock) -> None:
    open_ = Sessions(TokenConfig(), clock)
    assert not open_.required and open_.login("anything-at-all-0123") is None


@pytest.mark.parametrize(("target", "expected"), [
    ("/runs/r-1/questions?verdict=incorrect", "/runs/r-1/questions?verdict=incorrect"),
    ("/", "/"), (None, "/"), ("", "/"), ("//evil.example/", "/"), ("https://evil.example/", "/"),
    ("/\\evil.example", "/"), ("runs", "/"),
])
def test_a_login_leads_back_to_this_site_only(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected
