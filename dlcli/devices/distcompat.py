"""The one fix Keras 3.15's `fit` needs to train under tf.distribute.MultiWorkerMirroredStrategy.

Keras' TensorFlow trainer asks the strategy for two reductions that MultiWorkerMirroredStrategy's
`reduce` refuses (MirroredStrategy accepts them), so `fit` fails on every worker before its first
step:

1. `_maybe_symbolic_build` reduces the first data batch, a tuple, in one call: "Attempt to convert a
   value (PerReplica:{...}) with an unsupported type ... to a Tensor" (keras-team/keras issue 20585);
2. `reduce_per_replica` reduces every scalar loss and metric with `axis=0`: "Invalid reduction
   dimension 0 for input with 0 dimensions" (tensorflow/tensorflow issue 72388).

`MultiWorkerStrategy.reduce` (dlcli/devices/multiworker.py, imported only where TensorFlow runs) answers both:

1. a nested structure: Keras asks this only to build the model from the first batch, and reads
   nothing of the answer but each element's shape and dtype (`Trainer._symbolic_build` turns it into
   KerasTensors), so each element gives its first local replica's value. Reducing across workers
   would exchange a whole batch for nothing, and fails for uint8 images (collectives take no uint8);
2. a scalar is reduced across replicas (axis None), which is what `axis=0` means for a batch.

Every other call goes to TensorFlow unchanged, and where Keras stops making those two calls the
override is never reached. It is a subclass rather than a patch of Keras: nothing else in the
process changes.

`KERAS_CALL_SITES` holds the sha256 of the source of the two Keras functions as of Keras 3.15.1;
tests/test_distributed.py (test_keras_still_makes_the_calls_distcompat_fixes) fails the day they
change and says what to check.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect

#: `module:qualified name` → sha256 of its source, where Keras makes the calls fixed here.
KERAS_CALL_SITES = {
    "keras.src.backend.tensorflow.trainer:TensorFlowTrainer._maybe_symbolic_build": (
        "92a504f5eba9b29f81f1bf26180bdd5bf5186b06b7bda426534b90d2d02bc1c2"
    ),
    "keras.src.backend.tensorflow.trainer:reduce_per_replica": (
        "2e7d54b1e6edc29a8c6a7e6b66cd4c8be3ba7842412c93753ac3afe169fa7fb8"
    ),
}


def changed_call_sites() -> list[str]:
    """The Keras functions of KERAS_CALL_SITES whose source is no longer what the fix was made for."""

    changed = []
    for site, digest in KERAS_CALL_SITES.items():
        module_name, qualname = site.split(":")
        target = importlib.import_module(module_name)
        try:
            for part in qualname.split("."):
                target = getattr(target, part)
            source = inspect.getsource(target)
        except (AttributeError, OSError, TypeError):
            changed.append(site)
            continue
        if hashlib.sha256(source.encode()).hexdigest() != digest:
            changed.append(site)
    return changed
