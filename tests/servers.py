"""A real `dlcli serve` process on a free loopback port, for the serve tests (every wait bounded)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import STUCK_S


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`dlcli serve RUN ARGS` in a process of its own; with `start` (the `dlcli_fork` fixture), forked
    from the process that imported TensorFlow already (for servers that run the model in TensorFlow:
    the import is most of their start-up), else a fresh `python -m dlcli` (a light runtime's server
    must show it needs no TensorFlow)."""

    def __init__(self, run: Path, *args: str, start=None):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        serve = ["serve", str(run), "--port", str(self.port), *args]
        env = {"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2", "HOME": str(run.parent)}
        if start is not None:
            self.proc = start(*serve, cwd=run.parent, env=env)
        else:
            cmd = [sys.executable, "-m", "dlcli", *serve]
            self.proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
        deadline = time.monotonic() + STUCK_S
        while True:
            assert self.proc.poll() is None, self.proc.communicate()
            assert time.monotonic() < deadline, "the server never answered /health"
            try:
                self.get("/health")
                return
            except OSError:
                time.sleep(0.1)

    def request(self, path: str, body: bytes | None = None, content_type: str = "application/json"):
        """(status, parsed JSON body)"""
        req = urllib.request.Request(self.url + path, data=body, headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def get(self, path: str):
        status, body = self.request(path)
        assert status == 200, body
        return body

    def post(self, body, path: str = "/predict"):
        return self.request(path, json.dumps(body).encode())

    def stop(self) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=STUCK_S)
        return self.proc.returncode, out, err
