"""Shared helpers: run the real `dlcli` in a subprocess, find ../shared/data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"

#: A small valid config (iris), for tests that break one thing in it.
GOOD = """\
name: t
data:
  dataset: iris
model:
  layers:
    - Dense: {units: 8, activation: relu}
    - Dense: {units: 3, activation: softmax}
optimizer: {name: adam, learning_rate: 0.01}
loss: sparse_categorical_crossentropy
metrics: [accuracy]
train:
  epochs: 2
"""

# The light model every `dlcli train` writes at its end (train.light_model) costs 1-2 s a run, and the
# suite trains some 250: off by default here (its machine-wide switch); tests/test_light_model.py turns
# it on in the configs of the runs it checks, and the shared runs are exported where a test needs it.
os.environ["DLCLI_LIGHT_MODEL"] = "off"

# CI sets DLCLI_DATA_DIR=../shared/data, relative to the repo; subprocesses run in temporary folders.
if os.environ.get("DLCLI_DATA_DIR"):
    os.environ["DLCLI_DATA_DIR"] = str(Path(os.environ["DLCLI_DATA_DIR"]).resolve())

# Keras caches what it downloads (backbone weights served from a test's mirror folder too) under
# $KERAS_HOME, read when Keras is imported: the suite's own, so no test writes into ~/.keras.
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="dlcli-tests-keras-"))


#: Test files whose tests take the most worker seconds (measured with --durations), heaviest first.
#: They are run first: xdist hands out the tests in collection order, so the long ones start early
#: and the many short ones fill the end, rather than one worker finishing a 40 s test alone.
HEAVY_FIRST = (
    "test_images.py",
    "test_resume.py",
    "test_real_data.py",
    "test_distributed.py",
    "test_export.py",
    "test_hostile_tune.py",
    "test_stream.py",
    "test_tune.py",
    "test_serve.py",
    "test_multitask.py",
    "test_messy_data.py",
)


def pytest_collection_modifyitems(items: list) -> None:
    """The heavy files first (HEAVY_FIRST's order), every file's tests in their own order."""
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session", autouse=True)
def one_core_per_worker() -> None:
    """With an xdist worker per core, each worker's TensorFlow runs an op on one thread: the runs
    trained in this process (most of the suite) then keep to their worker's core instead of taking the
    other worker's (its pool's threads spin while waiting). Processes of their own (forked, started)
    still choose their threads as dlcli does (train.intra_op_threads, tested in test_compute.py), and a
    run trained here records the 1 it used."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers < 2 or workers < (os.cpu_count() or 1):
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
    except RuntimeError:  # an op already ran in this worker: it keeps TensorFlow's default
        pass


#: How long a test waits for a run to reach a point before calling it stuck: a guard against hanging
#: forever, not a timing (a loaded 2-core machine is slow; speed is measured in benchmarks/).
STUCK_S = 600


def dlcli(
    *args: str, cwd: Path, env: dict | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """`python -m dlcli ARGS` in `cwd`; returns the finished process (text output)."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "dlcli", *args],
        cwd=cwd,
        env=full_env,
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def ci_config(name: str) -> str:
    """configs/ci/NAME.yaml's text with its data paths absolute (for configs written elsewhere)."""
    return (CONFIGS / "ci" / f"{name}.yaml").read_text().replace("../../data/", f"{ROOT}/data/")


def model_layers(run: Path) -> list[dict]:
    """The layer configs of a run's model.keras, read from the archive (no Keras)."""
    import zipfile

    with zipfile.ZipFile(run / "model.keras") as archive:
        return json.loads(archive.read("config.json"))["config"]["layers"]


def train_shipped(cli, config: str, name: str, *overrides: str) -> Path:
    """`dlcli train configs/CONFIG` copied into the test's folder (its data.path found in
    DLCLI_DATA_DIR), in this process, without plots or TensorBoard, with `-o OVERRIDES`; the run."""
    import shutil

    shutil.copy(CONFIGS / config, Path.cwd() / config)  # the cli fixture's folder: the test's tmp_path
    quiet = ["-q", "-o", "train.plots=false", "-o", "train.tensorboard=false"]
    code, _, err = cli("train", config, *quiet, *(a for o in overrides for a in ("-o", o)))
    assert code == 0, err
    return latest_run(Path.cwd(), name)


def fails(cli, *args: str, code: int = 2, raw: bool = False) -> str:
    """`dlcli ARGS` in this process must exit `code` (2: the user's mistake) with one `error:` block, no
    traceback, no internal error; its stderr, unwrapped into one line (`raw`: as printed). The one
    helper of every test that asserts a refusal's words."""
    got, out, err = cli(*args)
    assert got == code, f"exit {got}\n{out}\n{err}"
    assert "Traceback" not in out + err and "internal error" not in err
    assert err.lstrip().startswith(("error: ", "warning: ", "note: ")), err
    return err if raw else " ".join(err.split())


def unsealed(run: Path) -> None:
    """Forget the sha256 run.json keeps of the run's files, as a run of dlcli before 0.3 had none:
    for tests of the checks that stand behind it (a model's safe loading, non-finite outputs)."""
    record = json.loads((run / "run.json").read_text())
    record.pop("artifacts", None)
    (run / "run.json").write_text(json.dumps(record))


def latest_run(cwd: Path, name: str) -> Path:
    return (cwd / "runs" / name / "latest").resolve()


def read_json(path: Path):
    return json.loads(path.read_text())


@pytest.fixture
def shared_data() -> Path:
    """`$DLCLI_DATA_DIR` (CI sets it to ../shared/data); tests that need real data skip without it."""
    value = os.environ.get("DLCLI_DATA_DIR")
    if not value:
        pytest.skip("real datasets not available: DLCLI_DATA_DIR is not set (CI sets it to ../shared/data)")
    if not Path(value).is_dir():
        pytest.skip(f"real datasets not available: DLCLI_DATA_DIR={value} is not a folder")
    return Path(value).resolve()


def _trained(factory, config: str, start) -> Path:
    """configs/ci/CONFIG.yaml as shipped, trained by a real `dlcli train -q` process (`start`: the
    `dlcli_fork` fixture) once for the whole session: the first xdist worker to ask trains it under a
    lock and the others share the run (pytest-xdist's recipe for session fixtures). Its output is kept:
    see `trained_output`. A test that changes a shared run copies it first."""
    import fcntl

    base = factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    where = shared / f"trained-{config}"
    with open(shared / f"trained-{config}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (where / "train.stderr").is_file():
            where.mkdir(exist_ok=True)
            out, err = finished(start("train", str(CONFIGS / "ci" / f"{config}.yaml"), "-q", cwd=where))
            (where / "train.stdout").write_text(out)
            (where / "train.stderr").write_text(err)  # last: the run is complete
    (run,) = (p for p in (where / "runs").glob("*/2*") if p.is_dir())
    return run


def trained_output(run: Path) -> tuple[str, str]:
    """The stdout and stderr of the `dlcli train` that made a shared run (`_trained`)."""
    where = run.parents[2]
    return (where / "train.stdout").read_text(), (where / "train.stderr").read_text()


def _shared_run(config: str, doc: str):
    """A session fixture `<config>_run`: configs/ci/CONFIG.yaml trained once (`_trained`)."""

    def fixture(tmp_path_factory, dlcli_fork) -> Path:
        return _trained(tmp_path_factory, config, dlcli_fork)

    fixture.__doc__ = doc
    return pytest.fixture(scope="session", name=f"{config}_run")(fixture)


iris_run = _shared_run("iris", "configs/ci/iris.yaml as shipped.")
series_run = _shared_run("series", "configs/ci/series.yaml as shipped (windows of a series).")
regression_run = _shared_run(
    "regression", "configs/ci/regression.yaml as shipped (4 epochs, early stopping, TensorBoard on)."
)
binary_run = _shared_run("binary", 'configs/ci/binary.yaml as shipped (string labels "no"/"yes").')
images_run = _shared_run("images", "configs/ci/images.yaml as shipped (uint8 8x8 digits, a small convnet).")
text_run = _shared_run(
    "text", "configs/ci/text.yaml as shipped: tf_idf of words and pairs of words, then Dense layers."
)
multitask_run = _shared_run(
    "multitask", "configs/ci/multitask.yaml as shipped: price (regression) and city (3 classes), a head each."
)
photo_table_run = _shared_run(
    "photo_table",
    "configs/ci/photo_table.yaml as shipped: a photo per row beside a number, a branch each, two targets.",
)
image_folder_run = _shared_run(
    "image_folder", "configs/ci/image_folder.yaml as shipped: 48 small photos of varied sizes and formats."
)


@pytest.fixture
def cli(monkeypatch, capsys, tmp_path):
    """Run `dlcli ARGS` in this process (real exit code and output, TensorFlow imported once).

    Returns `(exit code, stdout, stderr)`; the working directory is the test's tmp_path.
    """
    from dlcli.cli import cli as cli_module

    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["dlcli", *args])
        code = 0
        try:
            cli_module.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def dlcli_popen(*args: str, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    """`python -m dlcli ARGS` started in the background (for tests that signal or kill it)."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "dlcli", *args],
        cwd=cwd,
        env=full_env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


class Forked:
    """A `dlcli` process forked by the fork server (tests/forkserver.py), used as a Popen is."""

    def __init__(self, pid: int, out: Path, err: Path, status: Path):
        self.pid, self._out, self._err, self._status = pid, out, err, status
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and self._status.exists():
            self.returncode = int(self._status.read_text())
        return self.returncode

    def wait(self, timeout: float = STUCK_S) -> int:
        import time

        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"dlcli (pid {self.pid})", timeout)
            time.sleep(0.005)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        import signal

        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float = STUCK_S) -> tuple[str, str]:
        self.wait(timeout)
        return self._out.read_text(), self._err.read_text()


def finished(proc) -> tuple[str, str]:
    """A started `dlcli` (Popen or Forked) that must exit 0; its (stdout, stderr)."""
    out, err = proc.communicate()
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{out}\nstderr:\n{err}"
    return out, err


def forked(start, *args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """`dlcli ARGS` forked by `start` (the `dlcli_fork` fixture) and waited for, as `dlcli()` returns it."""
    proc = start(*args, cwd=cwd, env=env)
    out, err = proc.communicate()
    return subprocess.CompletedProcess(["dlcli", *args], proc.returncode, out, err)


@pytest.fixture(scope="session")
def dlcli_fork(tmp_path_factory):
    """`dlcli_fork(*args, cwd=, env=)`: like `dlcli_popen`, but forked from a server that imported
    TensorFlow and dlcli once (tests/forkserver.py), for tests that start many runs to kill them: each
    start costs milliseconds instead of a 5 s import. The start-up phase itself needs `dlcli_popen`.
    With `script=PATH`, `python PATH ARGS` forked the same way."""
    import itertools

    folder = tmp_path_factory.mktemp("forked")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("forkserver.py"))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=folder,
    )
    assert json.loads(server.stdout.readline()) == {"ready": True}
    numbers = itertools.count()
    import threading

    lock = threading.Lock()  # tests start runs from several threads

    def start(*args: str, cwd: Path, env: dict | None = None, script: Path | None = None) -> Forked:
        with lock:
            n = next(numbers)
            out, err, status = (folder / f"{n}.{what}" for what in ("out", "err", "status"))
            request = {
                "script": str(script) if script else None,
                "args": list(args),
                "cwd": str(cwd),
                "env": {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
                "out": str(out),
                "err": str(err),
                "status": str(status),
            }
            server.stdin.write(json.dumps(request) + "\n")
            server.stdin.flush()
            pid = json.loads(server.stdout.readline())["pid"]
        return Forked(pid, out, err, status)

    yield start
    server.stdin.close()
    server.wait(timeout=60)


def _postgres_bin(name: str) -> str | None:
    import glob
    import shutil

    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL server of this session on a free loopback port (initdb + pg_ctl from the system
    packages, which .ci/run installs), or $DLCLI_TEST_POSTGRES; skipped with the reason where neither
    can be had. A study shared by several machines lives in such a database."""
    import shutil
    import socket
    import tempfile

    if os.environ.get("DLCLI_TEST_POSTGRES"):
        yield os.environ["DLCLI_TEST_POSTGRES"]
        return
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL is not installed (no initdb/pg_ctl); .ci/run installs it with apt-get")
    pytest.importorskip("psycopg", reason="the PostgreSQL driver (psycopg, the tune extra) is not installed")
    folder = Path(
        tempfile.mkdtemp(prefix="dlcli-pg-")
    )  # not under pytest's 0700 folders: the server reads it
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: the packages' postgres user runs it
        import pwd

        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run the server as")
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data, log = folder / "data", folder / "log"
    init = subprocess.run(
        [*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "dlcli"], capture_output=True, text=True
    )
    if init.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"PostgreSQL's initdb failed: {init.stderr.strip()[-300:]}")
    options = f"-p {port} -k {folder} -h 127.0.0.1"
    start = subprocess.run(
        [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start"],
        capture_output=True,
        text=True,
    )
    if start.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {start.stderr.strip()[-300:]}")
    try:
        yield f"postgresql://dlcli@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
