"""A stand-in dashboard for the serve tests: speaks textual's web-driver protocol (the
``__GANGLION__`` prelude, then D/M packets: type byte, 4-byte big-endian length, payload) on
stdout/stdin without importing textual, so a connection starts in a fraction of a second.

Usage: ``python serve_stand_in.py PIDFILE MODE``; every process appends its pid to PIDFILE.
MODE ``polite`` quits on the server's quit packet or when stdin closes. ``stubborn`` is a hung
dashboard: it ignores SIGINT, SIGTERM, SIGHUP, quit packets and stdin EOF, and starts a
grandchild (same process group) that ignores them too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time


def packet(kind: bytes, payload: bytes) -> bytes:
    return kind + len(payload).to_bytes(4, "big") + payload


def main() -> None:
    pidfile, mode = sys.argv[1], sys.argv[2]
    with open(pidfile, "a") as f:
        f.write(f"{os.getpid()}\n")
    if mode in ("stubborn", "grandchild"):
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
    if mode == "grandchild":
        while True:
            time.sleep(0.05)
    if mode == "stubborn":
        subprocess.Popen([sys.executable, __file__, pidfile, "grandchild"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    out = sys.stdout.buffer
    out.write(b"__GANGLION__\n" + packet(b"D", b"stand-in dashboard"))
    out.flush()
    if mode == "stubborn":
        while True:  # neither reads stdin nor exits
            time.sleep(0.05)
    buffer = b""
    while chunk := os.read(0, 4096):
        buffer += chunk
        while len(buffer) >= 5 and len(buffer) >= 5 + int.from_bytes(buffer[1:5], "big"):
            size = int.from_bytes(buffer[1:5], "big")
            kind, payload, buffer = buffer[:1], buffer[5:5 + size], buffer[5 + size:]
            if kind == b"M" and json.loads(payload).get("type") == "quit":
                out.write(packet(b"M", b'{"type": "exit"}'))
                out.flush()
                return
            if kind == b"D":
                out.write(packet(b"D", b"echo:" + payload))
                out.flush()


if __name__ == "__main__":
    main()
