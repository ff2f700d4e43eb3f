"""Where training runs: `--device`, and train.distribution as a tf.distribute strategy.

- `select_device` applies `--device cpu|gpu|gpu:N` by limiting the devices TensorFlow sees;
- `place` turns train.distribution into a `Placement`: no strategy for one device (Keras' default,
  exactly as plain Keras trains), MirroredStrategy over the devices of this machine, or
  MultiWorkerMirroredStrategy over a cluster read from TF_CONFIG or Slurm (with distcompat's fix);
  and whether this process is the chief, the one worker that writes the run directory.

Both must run before TensorFlow's runtime starts (its first op), as device lists are fixed then.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from dlcli.config.config import Config
from dlcli.utils.errors import DeviceError

DEVICE_FORMS = "cpu, gpu or gpu:N (N a GPU's index, 0 for the first)"
CLUSTER_HELP = "see the README, 'Training on several machines'"


def parse_device(text: str | None) -> str | None:
    """`--device` as given, checked without TensorFlow."""
    if text is None:
        return None
    value = text.strip().lower()
    if re.fullmatch(r"cpu|gpu|gpu:\d+", value):
        return value
    raise DeviceError(f"--device {text}: expected {DEVICE_FORMS}")


def select_device(device: str | None) -> None:
    """Make only the devices `--device` names visible to TensorFlow."""
    if device is None:
        return
    gpus = tf.config.list_physical_devices("GPU")
    if device == "cpu":
        visible = []
    elif not gpus:
        why = (
            "it was built without CUDA" if not tf.test.is_built_with_cuda() else "no CUDA GPU or driver found"
        )
        raise DeviceError(
            f"--device {device}: TensorFlow sees no GPU on this machine ({why}); use --device cpu, "
            "or install the GPU build with pip install 'dlcli[gpu]' on a machine with an NVIDIA GPU"
        )
    elif device == "gpu":
        visible = gpus
    else:
        index = int(device.split(":")[1])
        if index >= len(gpus):
            raise DeviceError(
                f"--device {device}: this machine has {len(gpus)} GPU(s), gpu:0 to gpu:{len(gpus) - 1}"
            )
        visible = [gpus[index]]
    _set_visible(visible)


def _set_visible(gpus: list) -> None:
    try:
        tf.config.set_visible_devices(gpus, "GPU")
    except RuntimeError:  # the runtime already started (a library user ran TensorFlow before)
        if tf.config.get_visible_devices("GPU") != gpus:
            raise DeviceError(
                "the devices cannot be chosen any more: TensorFlow already ran in this process; choose "
                "them before any TensorFlow op runs (or start a new process)"
            ) from None


def visible_gpus() -> list:
    return tf.config.get_visible_devices("GPU")


@dataclass
class Placement:
    """How this process trains: which strategy over which devices, and its part in a cluster.

    The strategy itself is made by `start`, once TensorFlow's threads are set: making one starts
    TensorFlow's runtime. Until then nothing here runs a TensorFlow op.
    """

    kind: str  # one_device | mirrored | multi_worker
    local_devices: list[str] | None = None  # mirrored: the device names to mirror over
    resolver: Any = None  # multi_worker: the cluster
    worker: int = 0
    workers: int = 1
    chief: bool = True
    strategy: Any = None

    def start(self) -> None:
        if self.kind == "mirrored" and self.strategy is None:
            self.strategy = tf.distribute.MirroredStrategy(self.local_devices)
        elif self.kind == "multi_worker" and self.strategy is None:
            from dlcli.devices.multiworker import MultiWorkerStrategy  # TensorFlow: only where it runs

            self.strategy = MultiWorkerStrategy(cluster_resolver=self.resolver)

    def scope(self):
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    @property
    def distributed(self) -> bool:
        return self.kind != "one_device"

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync if self.strategy is not None else 1

    def describe(self) -> dict:
        if self.strategy is None:
            devices = ["GPU:0" if visible_gpus() else "CPU:0"]
        else:
            devices = [d.split("device:")[-1] for d in self.strategy.extended.worker_devices]
        out: dict[str, Any] = {"strategy": self.kind, "replicas": self.replicas, "devices": devices}
        if self.kind == "multi_worker":
            out |= {"workers": self.workers, "worker": self.worker}
        return out


def place(config: Config) -> Placement:
    """The Placement train.distribution asks for on this machine (and cluster)."""
    wanted = config.train.distribution
    gpus = visible_gpus()
    devices = wanted.devices
    kind = wanted.strategy
    if kind == "auto":
        several = len(gpus) > 1 if devices == "auto" else devices > 1
        kind = "mirrored" if several else "one_device"
    if kind == "one_device":
        return Placement("one_device")
    if kind == "mirrored":
        return Placement("mirrored", _local_devices(gpus, devices))
    if not gpus and devices not in ("auto", 1):
        raise DeviceError(
            f"train.distribution.devices: {devices}: a multi_worker strategy trains on one CPU device per "
            "worker when there are no GPUs; drop devices, or start more workers"
        )
    if gpus:
        _local_devices(gpus, devices)
    resolver = cluster_resolver()
    spec = resolver.cluster_spec().as_dict()
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    workers = len(spec.get("worker", [])) + len(spec.get("chief", []))
    order = task_id + (0 if task_type == "chief" or "chief" not in spec else 1)  # the chief is 0
    return Placement("multi_worker", resolver=resolver, worker=order, workers=workers, chief=is_chief(config))


def is_chief(config: Config) -> bool:
    """Whether this process writes the run directory: the task of type chief, else worker 0 (TF's rule).

    Read from TF_CONFIG or Slurm's rank without TensorFlow, so other workers skip the runs folder checks.
    """
    if config.train.distribution.strategy != "multi_worker":
        return True
    raw = os.environ.get("TF_CONFIG")
    if raw:
        value = check_tf_config(raw)
        task = value["task"]
        return task["type"] == "chief" or ("chief" not in value["cluster"] and task.get("index", 0) == 0)
    if "SLURM_PROCID" in os.environ:
        return os.environ["SLURM_PROCID"] == "0"
    raise _no_cluster()


def _local_devices(gpus: list, devices: int | str) -> list[str]:
    """Device names for MirroredStrategy: the first N GPUs, else N logical CPU devices."""
    if gpus:
        n = len(gpus) if devices == "auto" else int(devices)
        if n > len(gpus):
            raise DeviceError(
                f"train.distribution.devices: {n}, but {len(gpus)} GPU(s) are visible; lower it, or "
                "leave it at auto to use every visible GPU"
            )
        _set_visible(gpus[:n])
        return [f"/gpu:{i}" for i in range(n)]
    n = 1 if devices == "auto" else int(devices)
    if n > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
        except RuntimeError:
            if len(tf.config.list_logical_devices("CPU")) != n:
                raise DeviceError(
                    f"train.distribution.devices: {n} logical CPU devices cannot be made: TensorFlow "
                    "already ran in this process (start a new process)"
                ) from None
    return [f"/cpu:{i}" for i in range(n)]


def cluster_resolver():
    """The cluster of a multi_worker run: TF_CONFIG where it is set, else Slurm's srun variables."""
    raw = os.environ.get("TF_CONFIG")
    if raw:
        check_tf_config(raw)
        return tf.distribute.cluster_resolver.TFConfigClusterResolver()
    if "SLURM_PROCID" in os.environ:
        # GPUs are bound by Slurm (--gpus-per-task) or train.distribution.devices, not by the resolver:
        # its CUDA_VISIBLE_DEVICES would come after TensorFlow has listed the GPUs
        return _slurm_resolver()
    raise _no_cluster()


def _slurm_resolver():
    """The cluster from srun's variables, through TensorFlow's SlurmClusterResolver.

    Its GPU bookkeeping is bypassed: it would ask nvidia-smi (absent on CPU machines), fails outright
    with no GPU (a zero range step), and sets CUDA_VISIBLE_DEVICES too late to matter. The GPUs are
    the ones this process sees (Slurm's --gpus-per-task, train.distribution.devices).
    """
    gpus = len(visible_gpus())
    try:
        per_node = max(tasks_per_node(os.environ["SLURM_STEP_TASKS_PER_NODE"]))
        resolver = tf.distribute.cluster_resolver.SlurmClusterResolver(
            gpus_per_node=max(gpus, 1) * per_node, gpus_per_task=max(gpus, 1), auto_set_gpu=False
        )
        spec = resolver.cluster_spec()
    except (KeyError, RuntimeError, ValueError) as exc:
        raise DeviceError(
            f"Slurm: cannot read the cluster from srun's environment ({exc}); start the workers with srun "
            f"inside an allocation, or set TF_CONFIG ({CLUSTER_HELP})"
        ) from None
    return tf.distribute.cluster_resolver.SimpleClusterResolver(
        spec,
        task_type=resolver.task_type,
        task_id=resolver.task_id,
        num_accelerators={"GPU": gpus} if gpus else {},
        rpc_layer=resolver.rpc_layer,
    )


def tasks_per_node(text: str) -> list[int]:
    """Slurm's compact count list, one count per node: `2(x3),1` → [2, 2, 2, 1]."""
    counts = []
    for part in text.split(","):
        match = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", part.strip())
        if match is None:
            raise ValueError(f"SLURM_STEP_TASKS_PER_NODE={text!r} is not a list like 2(x3),1")
        counts += [int(match[1])] * int(match[2] or 1)
    return counts


def _no_cluster() -> DeviceError:
    return DeviceError(
        "train.distribution.strategy: multi_worker, but no cluster is described: set TF_CONFIG on each "
        f"worker, or start the workers with srun under Slurm ({CLUSTER_HELP})"
    )


def check_tf_config(raw: str) -> dict:
    """TF_CONFIG parsed, or a DeviceError saying what is wrong with it."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DeviceError(f"TF_CONFIG: not valid JSON ({exc}); {CLUSTER_HELP}") from None
    cluster = value.get("cluster") if isinstance(value, dict) else None
    task = value.get("task") if isinstance(value, dict) else None
    if not isinstance(cluster, dict) or not cluster.get("worker") and not cluster.get("chief"):
        raise DeviceError(
            'TF_CONFIG: expected {"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", '
            f'"index": N}}}}, got {raw}; {CLUSTER_HELP}'
        )
    for job, hosts in cluster.items():
        if not isinstance(hosts, list) or not all(isinstance(h, str) and ":" in h for h in hosts):
            raise DeviceError(f'TF_CONFIG: cluster["{job}"] must list "host:port" strings, got {hosts!r}')
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise DeviceError(
            f"TF_CONFIG: task.type must be one of the cluster's jobs ({', '.join(cluster)}), got "
            f"{task!r}; {CLUSTER_HELP}"
        )
    index = task.get("index", 0)
    if not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
        size = len(cluster[task["type"]])
        raise DeviceError(
            f"TF_CONFIG: task.index {index!r} is out of range: the cluster's {task['type']} job has "
            f"{size} task(s), so 0 to {size - 1}"
        )
    return value


def is_cluster_error(exc: BaseException) -> bool:
    """Whether `exc` is TensorFlow reporting that the cluster broke (a worker died or is unreachable)."""
    lost = (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.DeadlineExceededError)
    return isinstance(exc, lost) or (
        isinstance(exc, tf.errors.OpError) and "Collective ops is aborted" in str(exc)
    )


def cluster_error_summary(exc: BaseException) -> str:
    """TensorFlow's message about a broken cluster in one line, without the graph node and stack."""

    text = str(getattr(exc, "message", None) or exc).split("[[")[0]
    noise = ("Graph execution error", "Detected at node", "File ")
    parts = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip() and not p.strip().startswith(noise)]
    summary = " ".join(" ".join(parts).split())
    summary = summary[:400] + (" ..." if len(summary) > 400 else "")
    return f"the cluster lost a worker ({summary})"
