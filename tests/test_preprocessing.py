"""Preprocessing: fit on train only, transform, JSON round-trip (no pickle), windows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dlcli.config.config import Config
from dlcli.preprocessing import preprocessing
from dlcli.preprocessing.transforms import CategoricalEncoder, NumericTransformer, TargetEncoder
from dlcli.utils.errors import DataError


def _config(**over) -> Config:
    raw = {
        "name": "t",
        "data": {"path": "x.csv", "target": "y"},
        "loss": "mse",
        "model": {"layers": [{"Dense": {"units": 1}}]},
    }
    for key, value in over.items():
        raw[key] = value
    return Config.model_validate(raw)


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": [1.0, 2.0, np.nan, 4.0, 100.0],
            "b": [10, 20, 30, 40, 50],
            "c": ["x", "y", "x", None, "z"],
            "y": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )


@pytest.mark.parametrize("scale", ["standard", "minmax", "robust", "none"])
@pytest.mark.parametrize("impute", ["mean", "median", "constant"])
def test_numeric_matches_scikit_learn(frame, scale, impute):
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

    ours = NumericTransformer(["a", "b"], impute=impute, fill_value=-1.0, scale=scale).fit(frame)
    imputed = SimpleImputer(strategy=impute, fill_value=-1.0).fit_transform(frame[["a", "b"]])
    scaler = {"standard": StandardScaler(), "minmax": MinMaxScaler(), "robust": RobustScaler(), "none": None}[
        scale
    ]
    expected = imputed if scaler is None else scaler.fit_transform(imputed)
    np.testing.assert_allclose(ours.transform(frame), expected, rtol=1e-5, atol=1e-6)
    again = NumericTransformer.from_state(json.loads(json.dumps(ours.get_state())))
    np.testing.assert_array_equal(again.transform(frame), ours.transform(frame))


def test_fit_uses_only_the_rows_it_is_given(frame):
    train, test = frame.iloc[:3], frame.iloc[3:]
    fitted = NumericTransformer(["b"], scale="standard").fit(train)
    assert fitted.center_ == [20.0]  # the mean of the train rows, not of all rows
    assert fitted.transform(test)[:, 0].tolist() == pytest.approx(
        [(40 - 20) / 8.164966, (50 - 20) / 8.164966]
    )


def test_one_hot_unseen_category_is_all_zeros(frame):
    enc = CategoricalEncoder(["c"]).fit(frame)
    assert enc.categories_ == [["missing", "x", "y", "z"]]
    new = pd.DataFrame({"c": ["y", "never-seen", None]})
    restored = CategoricalEncoder.from_state(json.loads(json.dumps(enc.get_state())))
    out = restored.transform(new)
    assert out.tolist() == [[0, 0, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0]]
    assert restored.unknown_counts(new) == {"c": 1}
    before = restored.get_state()
    restored.transform(new)
    assert restored.get_state() == before  # transform learns nothing: the scikit-learn contract


def test_most_frequent_impute(frame):
    enc = CategoricalEncoder(["c"], impute="most_frequent").fit(frame)
    assert enc.fill_ == ["x"]
    assert enc.transform(pd.DataFrame({"c": [None]})).tolist() == [[1, 0, 0]]


def test_label_encoding_round_trip():
    enc = TargetEncoder("y", "classification").fit(np.array(["cat", "dog", "cat", "bird"], dtype=object))
    assert enc.classes_ == ["bird", "cat", "dog"]
    codes = enc.transform(np.array(["dog", "bird"], dtype=object))
    assert codes.tolist() == [2, 0]
    restored = TargetEncoder.from_state(json.loads(json.dumps(enc.get_state())))
    assert restored.inverse(codes).tolist() == ["dog", "bird"]
    with pytest.raises(DataError, match=r"label\(s\) 'fish' \(1 rows\) not among the training labels"):
        restored.transform(np.array(["fish"], dtype=object))


def test_target_scaling_is_undone():
    y = np.array([100_000.0, 200_000.0, 300_000.0])
    enc = TargetEncoder("y", "regression", "standard").fit(y)
    scaled = enc.transform(y)
    assert scaled.mean() == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(enc.inverse(scaled), y, rtol=1e-6)


def test_preprocessor_json_round_trip(frame):
    config = _config(preprocessing={"categorical": {"columns": ["c"]}, "target": {"scale": "minmax"}})
    prep = preprocessing.fit(config, frame, "train.csv")
    text = prep.to_json()
    assert "pickle" not in text and json.loads(text)["format"] == "dlcli.preprocessing/1"
    restored = preprocessing.from_json(text)
    np.testing.assert_array_equal(restored.features(frame), prep.features(frame))
    assert restored.input_shape == [2 + 4]
    np.testing.assert_allclose(
        restored.decode(restored.encode_target(restored.raw_target(frame)).reshape(-1, 1))[0], frame["y"]
    )


def test_windows_pair_each_window_with_the_value_horizon_steps_later():
    frame = pd.DataFrame({"v": np.arange(12, dtype=float)})
    config = _config(
        data={"path": "s.csv", "target": "v"},
        preprocessing={"numeric": {"scale": "none"}, "window": {"length": 3, "horizon": 2}},
    )
    prep = preprocessing.fit(config, frame)
    assert prep.input_shape == [3, 1] and prep.context == 4
    from dlcli.datasets import scoring

    ((x, y),) = [(bx.numpy(), by.numpy()) for bx, by in scoring.examples(prep, frame).dataset(prep, 100)]
    assert x.shape == (12 - 3 - 2 + 1, 3, 1)
    assert x[0, :, 0].tolist() == [0, 1, 2] and y[0] == 4  # window ends at 2, target at 2 + horizon
    assert x[-1, :, 0].tolist() == [7, 8, 9] and y[-1] == 11


def test_corrupt_state_is_a_run_error():
    from dlcli.utils.errors import RunError

    with pytest.raises(RunError, match="not a valid dlcli preprocessing state"):
        preprocessing.from_json('{"format": "something else"}')


def test_training_windows_are_cut_by_index_as_keras_cuts_them():
    """Issue 18's "series without copies": training keeps the series once and gathers each batch's
    windows by index; they are exactly the windows (and targets) of Keras' timeseries utility."""
    import keras
    import numpy as np

    from dlcli.datasets import pipeline, scoring

    series = np.arange(60, dtype="float32").reshape(30, 2)
    targets = np.arange(30, dtype="float32") * 10

    class Prep:
        windowed = True
        window = {"length": 5, "horizon": 3, "stride": 2}
        target_offset = 5 - 1 + 3

    ex = scoring.Examples(series, targets, None, starts=scoring.window_starts(30, 5, Prep.target_offset))
    x, y, windows = scoring.training_arrays(Prep(), ex)
    assert x is series  # the series itself, not a copy of its windows
    ds, _ = pipeline.training_dataset(x, y, batch_size=4, seed=1, windows=windows)
    got = {tuple(w.ravel()): t for bx, by in ds for w, t in zip(bx.numpy(), by.numpy(), strict=True)}
    expected = keras.utils.timeseries_dataset_from_array(
        series[: len(series) - 3], targets[5 - 1 + 3 :], sequence_length=5, sequence_stride=2, batch_size=64
    )
    want = {tuple(w.ravel()): t for bx, by in expected for w, t in zip(bx.numpy(), by.numpy(), strict=True)}
    assert got == want and len(got) == 12  # starts 0, 2, …, 22


def test_words_are_the_tokens_keras_text_vectorization_makes():
    import keras

    from dlcli.preprocessing.tokens import words

    texts = ["Don't WIN a prize!! (now) t&c's", "FreeMsg: call 08452810075over18's, txt STOP"]
    for standardize in ("lower_and_strip_punctuation", "lower", "strip_punctuation", None):
        layer = keras.layers.TextVectorization(standardize=standardize, output_mode="int")
        layer.adapt(texts)
        vocabulary = {str(w) for w in layer.get_vocabulary()[2:]}
        assert {w for t in texts for w in words(t, standardize)} == vocabulary, standardize
