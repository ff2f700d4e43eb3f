"""Several devices and machines: MirroredStrategy over two logical CPUs, two `dlcli train` workers
on 127.0.0.1 through TF_CONFIG (in sync, one run directory, a worker killed and both resumed),
the Keras compatibility fix, --device, and the cluster errors users see."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import CONFIGS, GOOD, ROOT, STUCK_S, finished, read_json

MULTI_WORKER = CONFIGS / "ci" / "multi_worker.yaml"
#: Two workers each compute half of every global batch and all-reduce the gradients, so the sums
#: differ from one process only in rounding: the city's test accuracy may move by one of its 48 test
#: rows and the losses by a few percent (measured here: identical to 4 decimals).
ACCURACY_TOLERANCE = 1 / 48 + 1e-9
LOSS_TOLERANCE = 0.05


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports: list[int], index: int) -> str:
    workers = [f"127.0.0.1:{p}" for p in ports]
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def start_cluster(
    start, args: list[str], cwd: Path, tmp_root: Path, n: int = 2, env: dict | None = None
) -> list[subprocess.Popen]:
    """`dlcli ARGS` as n workers of one cluster, each started by `start` (the `dlcli_fork` fixture:
    forked after TensorFlow's import, a process of its own); each worker's TMPDIR is tmp_root/worker<i>."""
    ports = free_ports(n)
    procs = []
    for i in range(n):
        tmp = tmp_root / f"worker{i}"
        tmp.mkdir(parents=True, exist_ok=True)
        env = {**(env or {}), "TF_CONFIG": tf_config(ports, i), "TMPDIR": str(tmp)}
        procs.append(start(*args, cwd=cwd, env=env))
    return procs


def reap(procs: list[subprocess.Popen], timeout: float = 240) -> list[tuple[int, str, str]]:
    """Wait for every worker (all killed if the time runs out); (exit code, stdout, stderr) each."""
    deadline = time.monotonic() + timeout
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return results


def the_run(cwd: Path, name: str) -> Path:
    runs = sorted(p for p in (cwd / "runs" / name).iterdir() if p.is_dir() and not p.is_symlink())
    assert len(runs) == 1, runs
    return runs[0]


def test_two_workers_train_in_sync_and_write_one_run_directory(tmp_path, cli, dlcli_fork):
    single_dir, cluster_dir = tmp_path / "single", tmp_path / "cluster"
    cluster_dir.mkdir()
    single = ["-q", "-o", "train.distribution.strategy=one_device", "--run-dir", "single/runs"]
    code, _, err = cli("train", str(MULTI_WORKER), *single)  # in this process
    assert code == 0, err
    results = reap(
        start_cluster(dlcli_fork, ["train", str(MULTI_WORKER), "-q"], cluster_dir, tmp_path / "tmp")
    )
    for code, out, err in results:
        assert code == 0, f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"

    run_dir = the_run(cluster_dir, "ci-multi-worker")  # exactly one, written by the chief
    record = read_json(run_dir / "run.json")
    assert record["status"] == "completed"
    placed = record["distribution"]
    assert (placed["strategy"], placed["workers"], placed["replicas"], placed["worker"]) == (
        "multi_worker",
        2,
        2,
        0,
    )
    assert record["compute"]["steps_per_execution"] == 1
    # worker 1 ends with the very weights the chief saved
    assert f"Weights sha256 {placed['weights_sha256']}" in results[1][1]
    assert "as worker 1 of 2; the chief (worker 0) wrote the run directory" in results[1][1]
    # the other worker's checkpoints went to a temporary folder, removed at the end
    assert list((tmp_path / "tmp" / "worker1").iterdir()) == []

    # early stopping and the best checkpoint decide as in one process: the same epochs, the same curves
    single_dir = single_dir / "runs" / "ci-multi-worker" / "latest"
    assert record["epochs"] == read_json(single_dir / "run.json")["epochs"]
    assert record["epochs"]["completed"] < 12  # it did stop early
    curves = pd.read_csv(run_dir / "history.csv"), pd.read_csv(single_dir / "history.csv")
    pd.testing.assert_frame_equal(*curves, rtol=LOSS_TOLERANCE)  # every output's loss and metric
    single = read_json(single_dir / "metrics.json")["test"]
    cluster = read_json(run_dir / "metrics.json")["test"]  # two targets: each output's numbers
    assert abs(cluster["city"]["accuracy"] - single["city"]["accuracy"]) <= ACCURACY_TOLERANCE
    assert abs(cluster["loss"] - single["loss"]) <= LOSS_TOLERANCE * single["loss"]
    assert cluster["price"]["r2"] == pytest.approx(single["price"]["r2"], abs=0.02)
    assert read_json(single_dir / "run.json")["distribution"] == {
        "strategy": "one_device",
        "replicas": 1,
        "devices": ["CPU:0"],
    }


def test_mirrored_over_two_logical_cpus_trains_and_predicts(tmp_path, dlcli_fork):
    config = str(CONFIGS / "ci" / "images.yaml")  # uint8 pixels, a Rescaling layer, a Conv2D
    overrides = ["-o", "train.distribution.strategy=mirrored", "-o", "train.distribution.devices=2"]
    finished(dlcli_fork("train", config, "-q", *overrides, cwd=tmp_path))  # logical CPUs: a new process
    run_dir = (tmp_path / "runs" / "ci-images" / "latest").resolve()
    record = read_json(run_dir / "run.json")
    assert record["distribution"]["devices"] == ["CPU:0", "CPU:1"]
    assert record["distribution"]["replicas"] == 2
    assert read_json(run_dir / "metrics.json")["validation"]["accuracy"] > 0.5
    out = tmp_path / "predictions.csv"
    stdout, _ = finished(
        dlcli_fork(
            "predict", str(run_dir), "--input", str(ROOT / "data" / "tiny_digits.npz"),
            "--output", str(out), "--device", "cpu", cwd=tmp_path,
        )
    )  # fmt: skip
    table = pd.read_csv(out)
    assert f"wrote {len(table)} predictions" in stdout
    assert len(table) > 100 and table["prediction"].between(0, 9).all()
    # resume under the strategy: two more epochs, from the third's checkpoint
    finished(dlcli_fork("train", "--resume", str(run_dir), "-o", "train.epochs=5", "-q", cwd=tmp_path))
    assert pd.read_csv(run_dir / "history.csv")["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert read_json(run_dir / "run.json")["distribution"]["replicas"] == 2


def test_a_killed_worker_stops_the_cluster_and_both_resume_to_the_end(tmp_path, dlcli_fork):
    args = ["train", str(MULTI_WORKER), "-q", "-o", "train.epochs=6", "-o", "train.batch_size=16"]
    args += ["-o", "train.early_stopping.patience=100"]  # every epoch trains
    procs = start_cluster(dlcli_fork, args, tmp_path, tmp_path / "tmp")
    try:
        deadline = time.monotonic() + STUCK_S
        while not list((tmp_path / "runs").glob("ci-multi-worker/*/checkpoints/resume.json")):
            assert time.monotonic() < deadline, f"no epoch was committed in {STUCK_S} s: stuck"
            assert all(p.poll() is None for p in procs), "a worker exited before the first epoch"
            time.sleep(0.05)
        procs[1].send_signal(signal.SIGKILL)  # worker 1 dies mid-run
    finally:
        (chief_code, _, chief_err), (worker_code, _, _) = reap(procs, timeout=180)
    assert worker_code == -signal.SIGKILL
    run_dir = the_run(tmp_path, "ci-multi-worker")
    assert chief_code == 1, chief_err
    assert "error: the cluster lost a worker (" in chief_err
    assert f"Restart every worker with: dlcli train --resume {run_dir}" in chief_err
    record = read_json(run_dir / "run.json")
    assert record["status"] == "failed" and record["error"].startswith("the cluster lost a worker (")
    committed = read_json(run_dir / "checkpoints" / "resume.json")["epoch"]
    assert 1 <= committed < 6

    resume = ["train", "--resume", str(run_dir), "-q"]
    results = reap(start_cluster(dlcli_fork, resume, tmp_path, tmp_path / "tmp2"))
    for code, out, err in results:
        assert code == 0, f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"
    record = read_json(run_dir / "run.json")
    assert record["status"] == "completed"
    history = pd.read_csv(run_dir / "history.csv")
    assert history["epoch"].tolist() == list(range(1, 7))
    assert f"Weights sha256 {record['distribution']['weights_sha256']}" in results[1][1]
    assert list((tmp_path / "tmp2" / "worker1").iterdir()) == []


# ---- the compatibility fix ---------------------------------------------------------------------

UNFIXED = """
import os, sys
import numpy as np, tensorflow as tf, keras
strategy = tf.distribute.MultiWorkerMirroredStrategy()
x = np.random.RandomState(0).rand(64, 4).astype("float32")
ds = tf.data.Dataset.from_tensor_slices((x, (x.sum(1) > 2).astype("int64"))).batch(16)
with strategy.scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
model.fit(ds, epochs=1, verbose=0)
"""


def test_keras_still_makes_the_calls_distcompat_fixes():
    from dlcli.devices import distcompat

    changed = distcompat.changed_call_sites()
    assert changed == [], (
        f"Keras changed {changed}, where dlcli/devices/distcompat.py fixes multi-worker training "
        "(keras-team/keras issue 20585, tensorflow/tensorflow issue 72388). Read the new code: if Keras "
        "no longer asks MultiWorkerMirroredStrategy.reduce for a nested structure or a scalar with "
        "axis=0, drop distcompat.py and use tf.distribute.MultiWorkerMirroredStrategy; else update "
        "KERAS_CALL_SITES."
    )


def test_without_the_fix_keras_multi_worker_training_still_fails(tmp_path, dlcli_fork):
    """The day this fails, Keras trains under the plain strategy: drop dlcli/devices/distcompat.py.
    The two workers are plain scripts forked after TensorFlow's import (dlcli's fix is a strategy
    subclass of its own: importing dlcli changes nothing in Keras)."""
    script = tmp_path / "unfixed.py"
    script.write_text(UNFIXED)
    ports = free_ports(2)
    procs = [
        dlcli_fork(cwd=tmp_path, env={"TF_CONFIG": tf_config(ports, i)}, script=script) for i in range(2)
    ]
    results = reap(procs, timeout=180)
    errors = "\n".join(err for _, _, err in results)
    assert any(code != 0 for code, _, _ in results), (
        "Keras now trains under plain tf.distribute.MultiWorkerMirroredStrategy: drop dlcli/devices/distcompat.py"
    )
    assert "unsupported type (<class 'tensorflow.python.distribute.values.PerReplica'>)" in errors or (
        "Invalid reduction dimension 0 for input with 0 dimensions" in errors
    ), errors[-3000:]


# ---- devices and clusters: what users see when they get them wrong --------------------------------


def test_device_choice_errors(cli, tmp_path):
    (tmp_path / "c.yaml").write_text(GOOD)
    code, _, err = cli("train", "c.yaml", "--device", "tpu")
    assert code == 2
    assert "error: --device tpu: expected cpu, gpu or gpu:N (N a GPU's index, 0 for the first)" in err
    code, _, err = cli("evaluate", "latest", "--device", "gpu0")
    assert code == 2 and "--device gpu0: expected cpu, gpu or gpu:N" in err


def test_asking_for_a_gpu_on_a_machine_without_one(cli, tmp_path):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    (tmp_path / "c.yaml").write_text(GOOD)
    code, _, err = cli("train", "c.yaml", "--device", "gpu:1")
    assert code == 2
    assert "error: --device gpu:1: TensorFlow sees no GPU on this machine (" in err
    assert "use --device cpu" in err
    assert not (tmp_path / "runs" / "t").exists() or not any((tmp_path / "runs" / "t").iterdir())


@pytest.mark.parametrize(
    ("tf_config_value", "message"),
    [
        (None, "train.distribution.strategy: multi_worker, but no cluster is described: set TF_CONFIG on "
         "each worker, or start the workers with srun under Slurm"),
        ("{worker", "TF_CONFIG: not valid JSON ("),
        ('{"cluster": {"worker": ["127.0.0.1:2222"]}, "task": {"type": "worker", "index": 3}}',
         "TF_CONFIG: task.index 3 is out of range: the cluster's worker job has 1 task(s), so 0 to 0"),
        ('{"cluster": {"worker": ["127.0.0.1:2222"]}, "task": {"type": "ps", "index": 0}}',
         "TF_CONFIG: task.type must be one of the cluster's jobs (worker), got {'type': 'ps', 'index': 0}"),
        ('{"cluster": {"worker": "127.0.0.1:2222"}, "task": {"type": "worker"}}',
         "TF_CONFIG: cluster[\"worker\"] must list \"host:port\" strings, got '127.0.0.1:2222'"),
    ],
)  # fmt: skip
def test_cluster_description_errors(cli, tmp_path, monkeypatch, tf_config_value, message):
    monkeypatch.delenv("SLURM_PROCID", raising=False)
    if tf_config_value is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config_value)
    (tmp_path / "c.yaml").write_text(GOOD + "  distribution: {strategy: multi_worker}\n")
    code, _, err = cli("train", "c.yaml")
    assert code == 2
    assert f"error: {message}" in err
    assert not (tmp_path / "runs").exists()  # refused before a run directory (or TensorFlow's runtime)


def test_distribution_config_errors(cli, tmp_path):
    (tmp_path / "c.yaml").write_text(
        GOOD + "  steps_per_execution: 8\n  distribution: {strategy: one_device, devices: 2}\n"
    )
    code, _, err = cli("validate", "c.yaml")
    assert code == 2
    assert (
        "c.yaml:13:3: train.steps_per_execution: 8 steps per call cannot run on more than one device or "
        "worker with Keras 3.15"
    ) in err
    assert (
        "c.yaml:14:40: train.distribution.devices: strategy one_device trains on one device, not 2: set "
        "strategy: mirrored (or auto), or drop devices"
    ) in err


def test_slurm_workers_find_their_cluster_and_chief(monkeypatch):
    from dlcli.config.config import load_config
    from dlcli.devices import distribute

    monkeypatch.delenv("TF_CONFIG", raising=False)
    for key, value in {
        "SLURM_PROCID": "1",
        "SLURM_STEP_NUM_TASKS": "2",
        "SLURM_STEP_NODELIST": "node[1-2]",
        "SLURM_STEP_TASKS_PER_NODE": "1(x2)",
    }.items():
        monkeypatch.setenv(key, value)
    config = load_config(MULTI_WORKER)
    placement = distribute.place(config)
    assert placement.resolver.cluster_spec().as_dict() == {"worker": ["node1:8888", "node2:8888"]}
    assert (placement.kind, placement.worker, placement.workers, placement.chief) == (
        "multi_worker",
        1,
        2,
        False,
    )
    assert distribute.is_chief(config) is False
    monkeypatch.setenv("SLURM_PROCID", "0")
    assert distribute.is_chief(config) is True


@pytest.mark.parametrize(
    ("cluster", "task", "chief"),
    [
        ({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 0}, True),
        ({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 1}, False),
        ({"chief": ["c:1"], "worker": ["a:1"]}, {"type": "chief", "index": 0}, True),
        ({"chief": ["c:1"], "worker": ["a:1"]}, {"type": "worker", "index": 0}, False),
    ],
)
def test_the_chief_is_the_chief_task_else_worker_0(monkeypatch, cluster, task, chief):
    from dlcli.config.config import load_config
    from dlcli.devices import distribute

    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
    assert distribute.is_chief(load_config(MULTI_WORKER)) is chief
    monkeypatch.setenv("TF_CONFIG", "{}")  # one_device and mirrored ignore TF_CONFIG
    assert distribute.is_chief(load_config(CONFIGS / "ci" / "iris.yaml")) is True


def test_steps_per_call_under_a_strategy_chosen_at_train_time():
    """strategy auto becomes mirrored only on a machine with GPUs: the same refusal then, at train time."""
    from dlcli.config.config import load_config
    from dlcli.devices import compute
    from dlcli.utils.errors import ConfigError

    auto = load_config(CONFIGS / "ci" / "iris.yaml")
    assert compute.steps_per_execution(auto, distributed=True) == 1
    assert compute.steps_per_execution(auto, distributed=False) == compute.AUTO_STEPS_PER_EXECUTION
    on_backbone = load_config(CONFIGS / "hymenoptera_finetune.yaml")  # long steps: one per call
    assert compute.steps_per_execution(on_backbone, distributed=False) == 1
    explicit = load_config(CONFIGS / "ci" / "iris.yaml", ["train.steps_per_execution=8"])
    with pytest.raises(ConfigError) as info:
        compute.steps_per_execution(explicit, distributed=True)
    assert str(info.value) == (
        "train.steps_per_execution: 8 steps per call cannot run on more than one device or worker with "
        "Keras 3.15 (its multi-step loop fails under tf.distribute, keras-team/keras issue 19246): set "
        "steps_per_execution: auto (1 there) or 1"
    )


STREAM = CONFIGS / "ci" / "stream_workers.yaml"
#: Parquet units of 500 rows: the 6,000-row table is 12 units, 6 per worker.
UNITS = {"DLCLI_UNIT_ROWS": "500"}


def _parquet_table(folder: Path) -> None:
    """benchmarks/make_table.py's 6,000 rows as two Parquet files with row groups of 500."""
    csv = folder / "table.csv"
    make = [sys.executable, str(ROOT / "benchmarks" / "make_table.py"), "--rows", "6000", "--out", str(csv)]
    subprocess.run(make, check=True, capture_output=True)
    frame = pd.read_csv(csv)
    (folder / "parts").mkdir()
    frame.iloc[:3500].to_parquet(folder / "parts" / "part-0.parquet", row_group_size=500, index=False)
    frame.iloc[3500:].to_parquet(folder / "parts" / "part-1.parquet", row_group_size=500, index=False)


def _close(a, b, path: str = "") -> None:
    """Equal JSON, floats within 1e-9 (relative): the workers' merged statistics and one reader's."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            _close(u, v, f"{path}[{i}]")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12), path
    else:
        assert a == b, path


def test_two_workers_read_disjoint_halves_of_a_parquet_folder_and_match_one_process(
    tmp_path, dlcli_fork, cli, monkeypatch
):
    _parquet_table(tmp_path)
    config = tmp_path / STREAM.name  # its data.path, parts/, is found beside it
    shutil.copyfile(STREAM, config)
    monkeypatch.setenv("DLCLI_UNIT_ROWS", "500")
    single = ["-q", "-o", "train.distribution.strategy=one_device", "--run-dir", "single"]
    code, _, err = cli("train", str(config), *single)
    assert code == 0, err
    cluster = start_cluster(dlcli_fork, ["train", str(config)], tmp_path, tmp_path / "tmp", env=UNITS)
    results = reap(cluster)
    for code, out, err in results:
        assert code == 0, f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"

    run_dir = the_run(tmp_path, "ci-stream-workers")
    one = tmp_path / "single" / "ci-stream-workers" / "latest"
    record = read_json(run_dir / "run.json")
    workers = record["data"]["stream"]["workers"]
    # each worker read its own 6 of the 12 units, in the statistics pass and in every epoch
    units = [set(w["units"]) for w in workers]
    assert units[0].isdisjoint(units[1]) and units[0] | units[1] == set(range(12))
    assert [set(w["units_read"]) for w in workers] == units
    assert [w["rows"] for w in workers] == [3000, 3000]
    for i, (_, _, err) in enumerate(results):  # notes go to stderr
        assert f"worker {i} read 6 of 12 pieces (3,000 of 6,000 rows)" in err
    # the merged statistics are one reader's: the same splits, the same fitted state
    assert record["data"]["rows"] == read_json(one / "run.json")["data"]["rows"]
    _close(read_json(run_dir / "preprocessing.json"), read_json(one / "preprocessing.json"))
    # both workers end with the same weights, and score like one process (every test row counted)
    assert f"Weights sha256 {record['distribution']['weights_sha256']}" in results[1][1]
    cluster_test, single_test = (read_json(d / "metrics.json")["test"] for d in (run_dir, one))
    assert sum(cluster_test["per_class"][c]["support"] for c in ("0", "1")) == record["data"]["rows"]["test"]
    assert abs(cluster_test["accuracy"] - single_test["accuracy"]) <= 0.02
    assert abs(cluster_test["loss"] - single_test["loss"]) <= LOSS_TOLERANCE * single_test["loss"]
    curves = pd.read_csv(run_dir / "history.csv"), pd.read_csv(one / "history.csv")
    pd.testing.assert_frame_equal(*curves, rtol=LOSS_TOLERANCE)


def test_a_streamed_csv_without_a_split_key_cannot_be_divided_between_workers(tmp_path, cli, monkeypatch):
    csv = tmp_path / "table.csv"
    make = [sys.executable, str(ROOT / "benchmarks" / "make_table.py"), "--rows", "500", "--out", str(csv)]
    subprocess.run(make, check=True, capture_output=True)
    config = tmp_path / STREAM.name
    shutil.copyfile(STREAM, config)
    monkeypatch.setenv("TF_CONFIG", tf_config(free_ports(2), 0))
    code, out, err = cli("train", str(config), "-o", "data.path=table.csv", "-o", "data.split.key=null")
    assert code == 2, out + err
    assert (
        "stream_workers.yaml:12:3: data.split: under multi_worker the workers divide a streamed delimited text "
        "file by byte ranges, and a row's position is not known until the rows before it are read, so it "
        "cannot decide the split: give data.split.key (a column that identifies each row) or "
        "data.split.column, or stream Parquet files"
    ) in err
