"""dlcli/datasets/: windows, the epoch order as a function of (seed, epoch), and the predictions
table, called directly on tiny arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dlcli.datasets import pipeline, scoring
from dlcli.datasets.predictions import prediction_table


def test_window_starts_keep_each_window_inside_its_series_and_on_a_target():
    assert scoring.window_starts(6, 3, 2).tolist() == [0, 1, 2, 3]
    ids = np.array([0, 0, 0, 1, 1, 1, 1])
    assert scoring.window_starts(7, 2, 1, ids=ids).tolist() == [0, 1, 3, 4, 5]
    targets = np.array([False, True, False, True, True])
    assert scoring.window_starts(5, 2, 1, targets=targets).tolist() == [0, 2, 3]


def _epoch(ds, epoch_var, epoch):
    epoch_var.assign(epoch)
    return np.concatenate([by.numpy() for _, by in ds])


def test_an_epochs_order_is_a_function_of_the_seed_and_the_epoch_alone():
    x = np.arange(20, dtype="float32").reshape(10, 2)
    y = np.arange(10, dtype="int64")
    ds, epoch = pipeline.training_dataset(x, y, batch_size=3, seed=7)
    first, second, again = _epoch(ds, epoch, 0), _epoch(ds, epoch, 1), _epoch(ds, epoch, 0)
    assert sorted(first.tolist()) == list(range(10))  # every row once
    assert first.tolist() == again.tolist()  # epoch 0 replayed (a resumed run sees the same batches)
    assert first.tolist() != second.tolist()
    other, other_epoch = pipeline.training_dataset(x, y, batch_size=3, seed=7)
    assert _epoch(other, other_epoch, 1).tolist() == second.tolist()


def test_a_batches_rows_keep_their_inputs_and_dtype():
    x = np.arange(12, dtype="uint8").reshape(6, 2)
    y = np.arange(6, dtype="int64")
    ds, _ = pipeline.training_dataset(x, y, batch_size=4, seed=0)
    for bx, by in ds:
        assert bx.dtype.name == "uint8"
        assert (bx.numpy() == x[by.numpy()]).all()


def test_the_predictions_table_keeps_the_inputs_and_adds_a_probability_per_class():
    part = pd.DataFrame({"id": [7, 8]})
    probs = np.array([[0.9, 0.1], [0.2, 0.8]])
    table = prediction_table(part, np.array(["no", "yes"], dtype=object), probs, ["no", "yes"])
    assert table.columns.tolist() == ["id", "prediction", "probability_no", "probability_yes"]
    assert table["prediction"].tolist() == ["no", "yes"] and table["probability_yes"].tolist() == [0.1, 0.8]
    assert part.columns.tolist() == ["id"]  # the caller's frame untouched


def test_a_series_first_rows_without_a_whole_window_get_no_forecast():
    table = prediction_table(pd.DataFrame({"t": range(4)}), np.array([1.5, 2.5]), None, None, pad=2)
    assert table["prediction"].isna().tolist() == [True, True, False, False]
    assert table["prediction"].tolist()[2:] == [1.5, 2.5]


def test_the_heap_is_collected_only_after_training_on_enough_data(monkeypatch):
    import gc

    import keras

    collected = []
    monkeypatch.setattr(gc, "collect", lambda *a: collected.append(1) or 0)
    small = {"a": np.zeros((10, 4), "float32"), "b": np.zeros(10, "int64")}
    assert pipeline.nbytes(small) == 240 and pipeline.nbytes(None) is None
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    pipeline.release_training_memory(model, pipeline.nbytes(small))
    assert collected == []  # 240 bytes: nothing worth a collection
    pipeline.release_training_memory(model, pipeline.RELEASE_BYTES)
    pipeline.release_training_memory(model, None)  # a stream: unknown, collected
    assert collected == [1, 1] and model.train_function is None


def test_one_trace_serves_every_split_whatever_its_batch_sizes():
    """Scoring train, validation and test (batches of 64, a last one of 13, a single batch of 7) traces
    the model's forward step on the first split only, with and without the compiled loss and metrics
    (whose first trace makes the metrics' variables: TensorFlow traces such a function twice)."""
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    for compiled, traces in ((False, 1), (True, 2)):
        for n in (141, 7, 64):
            x, y = rng.random((n, 3)).astype("float32"), rng.integers(0, 2, n)
            ds = pipeline.array_dataset(x, y if compiled else None, 64)
            got = pipeline.forward(model, ds, compiled=compiled)
            assert len(got[0] if compiled else got) == n
            step = pipeline.traced_step(model, compiled, ds.element_spec)
            assert step.experimental_get_tracing_count() == traces, (compiled, n)
