"""A fork server for tests that start many `dlcli` processes to signal or kill them.

Each `python -m dlcli` spends about 5 s of CPU importing TensorFlow before it does anything a test
looks at. This server imports TensorFlow, Keras and dlcli once (no op runs, so TensorFlow's runtime
and its threads are not started: forking is safe), then forks one child per request that runs
`dlcli.cli.cli.main()` exactly as `python -m dlcli` would, in its own folder, environment and output
files. The children are real processes: signals, SIGKILL and exit codes are those of a subprocess.

A request with a `script` runs that Python file instead (`python SCRIPT ARGS`), for a test that checks
TensorFlow or Keras without dlcli: dlcli changes nothing in them on import.

Protocol, one JSON line each way on stdin/stdout: `{"args", "cwd", "env", "out", "err", "status"}`
(and `script`) →
`{"pid"}`; the server reaps its children and writes each one's exit code (negative: killed by that
signal, as subprocess reports it) to the request's `status` file.
"""

from __future__ import annotations

import json
import os
import select
import sys


def _child(request: dict) -> None:
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for fd, path in ((1, request["out"]), (2, request["err"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    script = request.get("script")
    sys.argv = [script, *request["args"]] if script else ["dlcli", *request["args"]]
    code = 1
    try:
        if script:  # a Python file of a test's own, run as `python SCRIPT ARGS` runs it
            import runpy

            runpy.run_path(script, run_name="__main__")
        else:
            from dlcli.cli.cli import main

            main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # as the interpreter ends a script that raised: the traceback, exit 1
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _reap(pending: dict[int, str]) -> None:
    while pending:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        path = pending.pop(pid)
        with open(path + ".tmp", "w") as f:
            f.write(str(code))
        os.replace(path + ".tmp", path)


def serve() -> None:
    # a run's first plot loads matplotlib's Agg backend and its font list: once here, for every child
    import io

    import keras  # noqa: F401
    import tensorflow  # noqa: F401
    from matplotlib.figure import Figure

    import dlcli.api
    import dlcli.cli.cli
    import dlcli.training.stages
    import dlcli.training.train  # noqa: F401

    figure = Figure()
    figure.add_subplot().set_title("warm")
    figure.savefig(io.BytesIO(), format="png")

    print(json.dumps({"ready": True}), flush=True)
    pending: dict[int, str] = {}
    while True:
        readable, _, _ = select.select([sys.stdin], [], [], 0.02)
        _reap(pending)
        if not readable:
            continue
        line = sys.stdin.readline()
        if not line:  # the test process went away
            return
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            _child(request)
        pending[pid] = request["status"]
        print(json.dumps({"pid": pid}), flush=True)


if __name__ == "__main__":
    serve()
