"""The status socket from a test or a benchmark: one request line, one answer (SPEC §9);
and a free loopback port.

No environment needed (bench/ imports it too).
"""
import json
import socket


def free_port():
    """A TCP port on 127.0.0.1 that nobody listened on a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def raw_answer(path, line, timeout=10):
    """Sends line (bytes, or an object sent as one JSON line) on a new connection; the answer's
    bytes as sent, up to and with its newline (short if the daemon closed first)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(line if isinstance(line, bytes) else (json.dumps(line) + "\n").encode())
        buf = bytearray()
        while not buf.endswith(b"\n"):
            data = s.recv(1 << 20)
            if not data:
                break
            buf += data
        return bytes(buf)
    finally:
        s.close()


def request(path, line, timeout=10):
    """The parsed answer to one request, or None if the daemon closed without a whole line."""
    buf = raw_answer(path, line, timeout)
    return json.loads(buf) if buf.endswith(b"\n") else None
