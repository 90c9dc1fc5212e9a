"""Where the model service listens: loopback by default, checked on the sockets themselves.

The real ``gmai-model serve random`` and a script calling the SDK's ``serve()`` run as
subprocesses; their listening sockets are read from /proc (the process's socket inodes
matched against /proc/net/tcp and tcp6), not taken from the ready line.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from gmai_eval.clients.sdk import Answer, InsecureBindError, Question, serving
from gmai_eval.clients.sdk.binding import is_loopback

from tests._sdk_helpers import listening_sockets

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux /proc")

READY = re.compile(r"gmai-model serving on (\S+):(\d+)(?: metrics (\S+):(\d+))?$")
"""The ready line, as clients/demo.py and scripts parse it, with the metrics part."""
WILDCARDS = {"0.0.0.0", "::"}
MODEL_CLI = [sys.executable, "-m", "gmai_eval.clients.reference.cli", "serve", "random"]
SDK_SCRIPT = (
    "import sys\n"
    "from gmai_eval.clients.sdk import Answer, serve\n"
    "def answer(q):\n"
    "    return Answer(label=q.labels[0])\n"
    "serve(answer, name='m', port=0, **eval(sys.argv[1]))\n"
)


def first_line(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """The first stdout line of ``proc``, or fail (with its stderr) if none comes in time."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            pytest.fail(f"no ready line within {timeout} s")
    line = proc.stdout.readline()
    assert line, proc.stderr.read() if proc.stderr else ""
    return line.rstrip("\n")


@contextlib.contextmanager
def running(argv: list[str]) -> Iterator[tuple[subprocess.Popen[str], re.Match[str]]]:
    """Start a model service, yield it with its parsed ready line, then SIGTERM it."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = first_line(proc)
        ready = READY.match(line)
        assert ready, line
        yield proc, ready
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def outside_address() -> str | None:
    """A non-loopback IPv4 address of this machine, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if is_loopback(address) or address == "0.0.0.0" else address


def refused_from(address: str, port: int) -> bool:
    """True when a TCP connection to ``address:port`` is refused."""
    try:
        socket.create_connection((address, port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_gmai_model_serve_listens_on_loopback_only_by_default() -> None:
    with running([*MODEL_CLI, "--port", "0", "--metrics-port", "0"]) as (proc, ready):
        grpc_port, metrics_port = int(ready[2]), int(ready[4])
        sockets = listening_sockets(proc.pid)
        outside = outside_address()
        refused = outside is not None and refused_from(outside, grpc_port)
    assert sockets == {("127.0.0.1", grpc_port), ("127.0.0.1", metrics_port)}
    assert (ready[1], ready[3]) == ("127.0.0.1", "127.0.0.1")
    assert outside is None or refused, f"{outside}:{grpc_port} accepted a connection"


def test_insecure_wildcard_listens_everywhere_and_warns_once() -> None:
    argv = [*MODEL_CLI, "--host", "0.0.0.0", "--insecure", "--port", "0", "--metrics-port", "0"]
    with running(argv) as (proc, ready):
        grpc_port, metrics_port = int(ready[2]), int(ready[4])
        sockets = listening_sockets(proc.pid)
    assert (ready[1], ready[3]) == ("0.0.0.0", "0.0.0.0")  # what was bound, not what to dial
    assert {port for _, port in sockets} == {grpc_port, metrics_port}
    assert {address for address, _ in sockets} <= WILDCARDS
    err = proc.stderr.read() if proc.stderr else ""
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert warnings == [
        "gmai-model: warning: serving plaintext on 0.0.0.0 (insecure): "
        "questions, images and answers travel unencrypted"
    ]


def test_plaintext_off_loopback_without_insecure_is_refused_in_one_line() -> None:
    result = subprocess.run(
        [*MODEL_CLI, "--host", "0.0.0.0", "--port", "0"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "Error: refusing to serve plaintext on 0.0.0.0: give --tls-cert and --tls-key "
        "(and --tls-client-ca for mutual TLS), or --insecure to accept an unencrypted port"
    ]


def test_sdk_serve_listens_on_loopback_only_by_default() -> None:
    with running([sys.executable, "-c", SDK_SCRIPT, "{}"]) as (proc, ready):
        sockets = listening_sockets(proc.pid)
    assert sockets == {("127.0.0.1", int(ready[2]))}
    assert ready[1] == "127.0.0.1" and ready[3] is None


def test_sdk_serve_refuses_plaintext_off_loopback_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SDK_SCRIPT, "{'host': '0.0.0.0'}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "gmai-model: refusing to serve plaintext on 0.0.0.0: pass tls=TlsFiles(cert, key) "
        "or allow_insecure=True to accept an unencrypted port"
    ]


def first_label(q: Question) -> Answer:
    return Answer(label=q.labels[0])


async def test_serving_refuses_plaintext_off_loopback_before_binding() -> None:
    with pytest.raises(InsecureBindError) as refused:
        async with serving(first_label, name="m", host="0.0.0.0"):
            pass
    assert refused.value.host == "0.0.0.0"


async def test_tls_may_bind_every_address_without_insecure(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from gmai_eval.clients.sdk import TlsFiles

    from tests._service_helpers import make_pki

    pki = make_pki(tmp_path / "pki")
    tls = TlsFiles(pki.server_cert, pki.server_key)
    async with serving(first_label, name="m", host="0.0.0.0", tls=tls) as server:
        sockets = listening_sockets(os.getpid())
        assert server.bound_address == f"0.0.0.0:{server.port}"
        assert server.address == f"127.0.0.1:{server.port}"
    assert any(address in WILDCARDS and port == server.port for address, port in sockets)
    assert "warning" not in capfd.readouterr().err


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.0.0.5", False),
        ("model.example", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_socket_reader_sees_a_known_listener() -> None:
    """The /proc reader against sockets opened here with the standard library."""
    with socket.create_server(("127.0.0.1", 0)) as v4, contextlib.ExitStack() as stack:
        expected = {("127.0.0.1", v4.getsockname()[1])}
        if socket.has_ipv6:
            with contextlib.suppress(OSError):
                v6 = stack.enter_context(socket.create_server(("::1", 0), family=socket.AF_INET6))
                expected.add(("::1", v6.getsockname()[1]))
        found = listening_sockets(os.getpid())
    assert expected <= found
    assert not expected & listening_sockets(os.getpid())  # closed: gone from the tables
