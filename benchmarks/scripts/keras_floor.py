"""The floor under any Keras training process: import TensorFlow and Keras, build the tutorial's MLP
(784 → 128 → 10) and fit it on one batch of 32 random MNIST-shaped rows. No data set is held.

    python benchmarks/scripts/keras_floor.py RESULT.json

Used by benchmarks/whole.py: its peak RSS is what every side pays before holding a single image.
"""

import json
import sys

import keras
import numpy as np

x = np.random.default_rng(0).random((32, 784), dtype=np.float32)
y = np.arange(32) % 10
model = keras.Sequential(
    [
        keras.Input((784,)),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ]
)
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x, y, batch_size=32, epochs=1, verbose=0)
with open(sys.argv[1], "w") as f:
    json.dump({"test_metric": float(history.history["accuracy"][-1])}, f)
