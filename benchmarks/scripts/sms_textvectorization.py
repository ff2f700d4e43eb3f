"""The SMS Spam Collection the plain way: pandas, scikit-learn's split, and Keras' TextVectorization
in the tf.data pipeline (keras.io's "text classification from scratch" pattern).

    python benchmarks/scripts/sms_textvectorization.py SMS_TSV RESULT_JSON EPOCHS

The same rows (headerless TSV, quotes as text), stratified split (20 % test, 15 % of all rows for
validation, seed 42), vectorizer (TF-IDF of words and pairs, 20,000 tokens, adapted on the training
messages), model, optimizer, batch size and class weights as configs/sms_spam.yaml, for a fixed
number of epochs.
"""

import csv
import sys

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from _timing import EpochTimes, write_result
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight

data, result, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
keras.utils.set_random_seed(42)
frame = pd.read_csv(data, sep="\t", header=None, names=["label", "message"], quoting=csv.QUOTE_NONE)
y = (frame["label"] == "spam").to_numpy("float32")
index = np.arange(len(frame))
rest, test = train_test_split(index, test_size=0.2, random_state=42, stratify=y)
train, val = train_test_split(rest, test_size=0.15 / 0.8, random_state=42, stratify=y[rest])
texts = frame["message"].to_numpy(dtype=object)

vectorize = keras.layers.TextVectorization(max_tokens=20000, output_mode="tf_idf", ngrams=2)
vectorize.adapt(texts[train])


def dataset(rows, shuffle):
    ds = tf.data.Dataset.from_tensor_slices((texts[rows].astype(str), y[rows]))
    if shuffle:
        ds = ds.shuffle(len(rows), seed=42)
    return ds.batch(64).map(lambda x, t: (vectorize(x), t), num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


model = keras.Sequential(
    [
        keras.Input((vectorize.vocabulary_size(),)),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ]
)
model.compile(optimizer=keras.optimizers.Adam(0.001), loss="binary_crossentropy", metrics=["accuracy"])
weights = compute_class_weight("balanced", classes=np.array([0.0, 1.0]), y=y[train])
timer = EpochTimes()
model.fit(
    dataset(train, True),
    validation_data=dataset(val, False),
    epochs=epochs,
    class_weight={0: weights[0], 1: weights[1]},
    callbacks=[timer],
    verbose=0,
)
_, accuracy = model.evaluate(dataset(test, False), verbose=0)
write_result(result, epoch_s=timer.times, test_metric=float(accuracy))
