"""Image folders the plain way: keras.utils.image_dataset_from_directory, then Keras' augmentation
layers mapped over the batches (keras.io's "image classification from scratch" pattern).

    python benchmarks/scripts/images_keras_utils.py FOLDER RESULT_JSON PASSES

Decode + resize to 224x224 + flip/rotation/zoom, batch 32, shuffled; reads PASSES passes over the
folder and reports images per second of each pass after the first.
"""

import sys
import time

import keras
import tensorflow as tf
from _timing import write_result

folder, result, passes = sys.argv[1], sys.argv[2], int(sys.argv[3])
ds = keras.utils.image_dataset_from_directory(folder, image_size=(224, 224), batch_size=32, seed=42)
augment = keras.Sequential(
    [keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.1), keras.layers.RandomZoom(0.1)]
)
ds = ds.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE).prefetch(
    tf.data.AUTOTUNE
)
rates = []
for _ in range(passes):
    began, count = time.perf_counter(), 0
    for x, _ in ds:
        count += int(x.shape[0])
    rates.append(count / (time.perf_counter() - began))
write_result(result, images_per_s=rates[1:], images=count)
