"""keras.io's "Simple MNIST convnet" (fchollet), as published.

    python benchmarks/scripts/mnist_convnet_kerasio.py MNIST_NPZ RESULT_JSON [EPOCHS]

Only the data source (our mnist.npz read with NumPy), a seed, the epoch count argument and the epoch
timer differ from the example.
"""

import sys

import keras
import numpy as np
from _timing import EpochTimes, write_result
from keras import layers

data, result = sys.argv[1], sys.argv[2]
epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 15
keras.utils.set_random_seed(42)
num_classes = 10
input_shape = (28, 28, 1)
with np.load(data) as mnist:
    (x_train, y_train), (x_test, y_test) = (
        (mnist["x_train"], mnist["y_train"]),
        (mnist["x_test"], mnist["y_test"]),
    )
x_train = x_train.astype("float32") / 255
x_test = x_test.astype("float32") / 255
x_train = np.expand_dims(x_train, -1)
x_test = np.expand_dims(x_test, -1)
y_train = keras.utils.to_categorical(y_train, num_classes)
y_test = keras.utils.to_categorical(y_test, num_classes)

model = keras.Sequential(
    [
        keras.Input(shape=input_shape),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ]
)
batch_size = 128
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
timer = EpochTimes()
model.fit(
    x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1, callbacks=[timer], verbose=0
)
score = model.evaluate(x_test, y_test, verbose=0)
write_result(result, epoch_s=timer.times, test_metric=score[1])
