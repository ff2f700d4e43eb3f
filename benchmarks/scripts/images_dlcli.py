"""dlcli's image input pipeline on its own: the folder read as dlcli reads it, files checked once,
then its training dataset (paths gathered in the epoch's order, decoded and resized in parallel,
batched), with the augmentation layers dlcli puts at the front of the model applied to each batch
in training mode, as the model's forward pass does.

    python benchmarks/scripts/images_dlcli.py FOLDER RESULT_JSON PASSES

Reports images per second of each pass after the first.
"""

import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from _timing import write_result

from dlcli.datasets import pipeline
from dlcli.io import folders, images

folder, result, passes = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
frame, _ = folders.read(folder)
paths = frame[folders.PATH].to_numpy(dtype=object)
images.check_files(paths, 3, str(folder), skip=False)
labels = frame[folders.LABEL].astype("category").cat.codes.to_numpy(dtype="int64")
state = {
    "size": [224, 224],
    "channels": 3,
    "interpolation": "bilinear",
    "crop_to_aspect_ratio": False,
    "pad_to_aspect_ratio": False,
}
ds, epoch = pipeline.training_dataset(paths, labels, 32, 42, load=images.loader(state))
layers = images.augmentation({"flip": "horizontal", "rotation": 0.1, "zoom": 0.1}, 42)


@tf.function(reduce_retracing=True)
def augment(x):
    for layer in layers:
        x = layer(x, training=True)
    return x


rates = []
for i in range(passes):
    epoch.assign(i)
    began, count = time.perf_counter(), 0
    for x, _ in ds:
        count += int(augment(x).shape[0])
    rates.append(count / (time.perf_counter() - began))
write_result(result, images_per_s=rates[1:], images=int(np.sum(count)))
