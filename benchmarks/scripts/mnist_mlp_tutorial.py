"""The tutorials' MNIST MLP ("TensorFlow 2 quickstart for beginners"), as users copy it.

    python benchmarks/scripts/mnist_mlp_tutorial.py MNIST_NPZ RESULT_JSON

Only the data source (our mnist.npz read with NumPy, since keras.datasets would download), a seed and
the epoch timer differ from the tutorial.
"""

import sys

import numpy as np
import tensorflow as tf
from _timing import EpochTimes, write_result

data, result = sys.argv[1], sys.argv[2]
tf.keras.utils.set_random_seed(42)
with np.load(data) as mnist:
    (x_train, y_train), (x_test, y_test) = (
        (mnist["x_train"], mnist["y_train"]),
        (mnist["x_test"], mnist["y_test"]),
    )
x_train, x_test = x_train / 255.0, x_test / 255.0

model = tf.keras.models.Sequential(
    [
        tf.keras.layers.Input((28, 28)),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(128, activation="relu"),
        tf.keras.layers.Dropout(0.2),
        tf.keras.layers.Dense(10),
    ]
)
loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
model.compile(optimizer="adam", loss=loss_fn, metrics=["accuracy"])
timer = EpochTimes()
model.fit(x_train, y_train, epochs=5, callbacks=[timer], verbose=0)
_, accuracy = model.evaluate(x_test, y_test, verbose=0)
write_result(result, epoch_s=timer.times, test_metric=accuracy)
