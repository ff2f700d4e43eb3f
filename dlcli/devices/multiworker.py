"""tf.distribute.MultiWorkerMirroredStrategy with the reduce Keras 3.15's `fit` needs: the fix, why,
and the guard that notices when Keras changes are in dlcli/devices/distcompat.py."""

from __future__ import annotations

import tensorflow as tf
from keras import tree


class MultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """MultiWorkerMirroredStrategy whose `reduce` takes what Keras' trainer asks of it."""

    def reduce(self, reduce_op, value, axis):
        if isinstance(value, tuple | list | dict):  # fix 1: only shapes and dtypes are read
            return tree.map_structure(self._first_local, value)
        scalar = getattr(getattr(value, "shape", None), "rank", None) == 0
        return super().reduce(reduce_op, value, None if scalar else axis)  # fix 2

    def _first_local(self, value):
        if isinstance(value, tf.distribute.DistributedValues):
            return self.experimental_local_results(value)[0]
        return value
