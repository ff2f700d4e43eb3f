"""`dlcli doctor`: what this machine gives dlcli — versions, CPU features, GPUs, where data is found.

Paste its output into a bug report. Everything is read from the system without side effects;
TensorFlow is imported (to list the GPUs it sees) only on a machine with an NVIDIA driver.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from dlcli.config.config import KERAS_DATASETS
from dlcli.runs import record as record_mod

#: x86 and Arm features that decide TensorFlow's CPU speed (oneDNN kernels, bfloat16).
CPU_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512_bf16",
    "avx512_vnni",
    "amx_tile",
    "asimd",
    "sve",
)


def versions() -> dict[str, str]:
    out = record_mod.versions((*record_mod.LIBRARIES, "matplotlib"))
    out["python"] += f" ({platform.python_implementation()})"
    # the full mlflow distribution and mlflow-skinny provide the same module
    found = {d: v for d, v in record_mod.versions(("mlflow", "mlflow-skinny")).items() if d != "python"}
    installed = [f"{v} ({d})" for d, v in found.items() if v != "not installed"]
    out["mlflow"] = installed[0] if installed else "not installed (optional: pip install 'dlcli[mlflow]')"
    return out


def cpu() -> dict[str, Any]:
    flags: set[str] = set()
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):
                flags.update(value.split())
            elif key.strip() == "model name":
                model = value.strip()
    except OSError:  # not Linux
        pass
    return {
        "system": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "model": model,
        "cores": os.cpu_count(),
        "usable cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "features": [flag for flag in CPU_FLAGS if flag in flags] or "unknown",
    }


def nvidia_present() -> bool:
    """Whether this machine has an NVIDIA driver at all, read from the system without TensorFlow."""
    return (
        bool(shutil.which("nvidia-smi"))
        or Path("/dev/nvidia0").exists()
        or Path("/proc/driver/nvidia").is_dir()
    )


def gpus() -> dict[str, Any]:
    """The GPUs TensorFlow sees, with nvidia-smi's name and memory where it is installed.

    TensorFlow (seconds of start-up, more on a loaded machine) is imported only where an NVIDIA
    driver is present: elsewhere there is no GPU for it to find.
    """
    if not nvidia_present():
        return {
            "NVIDIA driver": "none found (no nvidia-smi, /dev/nvidia0 or /proc/driver/nvidia)",
            "note": "training runs on the CPU",
        }
    from dlcli.devices.compute import import_tensorflow

    import_tensorflow()
    import tensorflow as tf

    devices = tf.config.list_physical_devices("GPU")
    out: dict[str, Any] = {
        "tensorflow built with CUDA": tf.test.is_built_with_cuda(),
        "visible to tensorflow": len(devices),
    }
    for index, device in enumerate(devices):
        details = tf.config.experimental.get_device_details(device)
        capability = details.get("compute_capability")
        name = details.get("device_name", device.name)
        out[f"gpu:{index}"] = f"{name}" + (
            f", compute capability {capability[0]}.{capability[1]}" if capability else ""
        )
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            lines = subprocess.run(  # noqa: S603 - a fixed command, no shell
                [smi, "--query-gpu=name,memory.total,memory.used", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.splitlines()
            out["nvidia-smi"] = [line.strip() for line in lines if line.strip()]
        except (OSError, subprocess.SubprocessError) as exc:
            out["nvidia-smi"] = f"failed ({exc})"
    if not devices:
        out["note"] = "training runs on the CPU" + (
            "; GPUs are present but TensorFlow cannot use them: pip install 'dlcli[gpu]'"
            if smi and not tf.test.is_built_with_cuda()
            else ""
        )
    return out


def _files(folder: Path | None) -> list[str]:
    if folder is None or not folder.is_dir():
        return []
    return [
        f"{path.relative_to(folder)} ({path.stat().st_size / 1e6:.1f} MB)"
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    ]


def data() -> dict[str, Any]:
    from dlcli.io.data import keras_datasets_dir
    from dlcli.utils.files import cache_dir

    env = os.environ.get("DLCLI_DATA_DIR")
    mirror = Path(env).expanduser() if env else None
    cache = cache_dir()
    keras_cache = keras_datasets_dir()
    offline = [
        name
        for name in KERAS_DATASETS
        if (mirror and (mirror / f"{name}.npz").is_file()) or (keras_cache / f"{name}.npz").is_file()
    ]
    return {
        "DLCLI_DATA_DIR": (f"{env} (no such folder)" if mirror and not mirror.is_dir() else env) or "not set",
        "files in DLCLI_DATA_DIR": _files(mirror),
        "download cache": str(cache),
        "files in the cache": _files(cache / "downloads"),
        "keras datasets cache": str(keras_cache),
        "dataset: names usable offline": offline
        + ["iris, wine, breast_cancer, digits, diabetes (scikit-learn)"],
    }


def report() -> dict[str, dict[str, Any]]:
    return {"versions": versions(), "cpu": cpu(), "gpus": gpus(), "data": data()}
