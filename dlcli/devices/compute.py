"""How TensorFlow is set up to compute: start-up, seeds and determinism, CPU threads, steps per call,
the device in use and a digest of the weights.

The arrays' way into the model and the predictions' way out are in pipeline.py; train.py holds the
training loop's callbacks and `fit`.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import tempfile

from dlcli.config.config import Config
from dlcli.utils.errors import ConfigError

#: steps_per_execution: auto. Per-step Python overhead dominates small models; running many steps per
#: call into TensorFlow removes it without changing results.
AUTO_STEPS_PER_EXECUTION = 32


def import_tensorflow() -> None:
    """Import TensorFlow once with its start-up chatter (absl lines about absent CUDA) held back.

    Those lines go straight to file descriptor 2 before any Python logging is set up; they are shown
    only if the import fails.
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # the CUDA probe prints here, once
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def seed_everything(seed: int, deterministic: bool | str = "auto") -> bool:
    """Python, NumPy and TensorFlow randomness from one seed; returns whether ops are deterministic.

    `auto` turns TensorFlow op determinism on where no GPU is used: on a CPU it costs little.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic == "auto":
        deterministic = not tf.config.get_visible_devices("GPU")
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    return bool(deterministic)


#: intra_op_threads: auto. A step of a small dense model (MNIST's MLP at batch 32: 3 M multiply-adds)
#: is too little work to split across threads: TensorFlow's pool costs more than it gains. One thread
#: per op made its epochs 10-25 % faster on 2 cores with identical results, while the convnet (a
#: step of 1.7 G multiply-adds) was 40 % slower with one. Below this many per step: one thread.
SMALL_STEP_MACS = 20_000_000
#: Layers that keep the shape of what they are given (the estimate passes through them).
_SHAPE_KEEPING = {
    "Dropout", "Activation", "BatchNormalization", "LayerNormalization", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax", "Rescaling",
}  # fmt: skip


def dense_step_macs(config: Config, input_shape: list[int]) -> int | None:
    """Multiply-adds of one training batch's forward pass for a model of Dense layers (and layers
    that only reshape or act element-wise); None for any other layer, whose cost this cannot tell."""

    if config.model.branches:
        return None
    shape = list(config.model.input_shape or input_shape)
    macs = 0
    for spec in config.model.layers:
        ((name, args),) = spec.items()
        args = args or {}
        if name == "Dense":
            units = int(args.get("units", 1))
            macs += math.prod(shape[:-1]) * shape[-1] * units
            shape = [*shape[:-1], units]
        elif name == "Flatten":
            shape = [math.prod(shape)]
        elif name == "Reshape" and "target_shape" in args:
            shape = [int(d) for d in args["target_shape"]]
        elif name not in _SHAPE_KEEPING:
            return None
    return macs * config.train.batch_size


def set_intra_op_threads(config: Config, input_shape: list[int]) -> int | str:
    """Apply train.intra_op_threads before TensorFlow runs its first op; returns what is in use."""
    import tensorflow as tf

    wanted = config.train.intra_op_threads
    if wanted == "auto":
        macs = dense_step_macs(config, input_shape)
        small = macs is not None and macs < SMALL_STEP_MACS and not tf.config.get_visible_devices("GPU")
        wanted = 1 if small else 0
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(wanted))
    except RuntimeError:  # TensorFlow already ran ops in this process (a library user, a test)
        pass
    return tf.config.threading.get_intra_op_parallelism_threads() or "all cores"


def device_name() -> str:
    import tensorflow as tf

    gpus = tf.config.get_visible_devices("GPU")  # what --device left visible
    return f"gpu x{len(gpus)}" if gpus else "cpu"


def weights_digest(model) -> str:
    """sha256 of the model's weight values, in order: equal digests, identical weights."""

    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    return digest.hexdigest()


def steps_per_execution(config: Config, distributed: bool = False) -> int:
    """train.steps_per_execution; 1 under a tf.distribute strategy, where Keras 3.15's loop over
    several steps fails ("You must feed a value for placeholder tensor", keras-team/keras issue 19246).

    `auto` is AUTO_STEPS_PER_EXECUTION, and 1 for a model on a backbone: a step of a pre-trained
    network is arithmetic enough that Python's per-step cost is nothing beside it, while Keras traces a
    loop's body twice (for MobileNetV2's 150 layers, seconds at the start of every run and phase)."""
    value = config.train.steps_per_execution
    if distributed and value not in ("auto", 1):
        from dlcli.config.checks import steps_per_call_problem

        raise ConfigError(f"train.steps_per_execution: {steps_per_call_problem(int(value))}")
    if distributed:
        return 1
    if value == "auto":
        return 1 if config.model.backbone else AUTO_STEPS_PER_EXECUTION
    return int(value)
