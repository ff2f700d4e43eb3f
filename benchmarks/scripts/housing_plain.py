"""California housing the plain way: pandas + scikit-learn preprocessing + a Keras MLP.

    python benchmarks/scripts/housing_plain.py HOUSING_CSV RESULT_JSON [SEED]

The same split (scikit-learn's train_test_split: 15 % test, then 15 % of all rows for validation,
with the seed as random_state, as dlcli does), preprocessing (median impute and standardise the
numbers, one-hot ocean_proximity, standardise the target), model, optimizer, batch size and early
stopping as configs/housing.yaml.
"""

import sys

import keras
import pandas as pd
from _timing import EpochTimes, write_result
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

data, result = sys.argv[1], sys.argv[2]
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 42
keras.utils.set_random_seed(seed)
frame = pd.read_csv(data)
y = frame.pop("median_house_value").to_numpy(dtype="float64").reshape(-1, 1)
rest_x, test_x, rest_y, test_y = train_test_split(frame, y, test_size=0.15, random_state=seed)
train_x, val_x, train_y, val_y = train_test_split(rest_x, rest_y, test_size=0.15 / 0.85, random_state=seed)

numeric = [c for c in frame.columns if c != "ocean_proximity"]
features = ColumnTransformer(
    [
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["ocean_proximity"]),
    ],
    sparse_threshold=0,
)
target = StandardScaler()
x_train = features.fit_transform(train_x).astype("float32")
x_val, x_test = features.transform(val_x).astype("float32"), features.transform(test_x).astype("float32")
y_train, y_val = target.fit_transform(train_y), target.transform(val_y)

model = keras.Sequential(
    [
        keras.Input((x_train.shape[1],)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(1),
    ]
)
model.compile(optimizer=keras.optimizers.Adam(0.001), loss="mse", metrics=["mae"])
timer = EpochTimes()
stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)
model.fit(
    x_train,
    y_train,
    validation_data=(x_val, y_val),
    epochs=200,
    batch_size=64,
    callbacks=[stop, timer],
    verbose=0,
)
predicted = target.inverse_transform(model.predict(x_test, batch_size=64, verbose=0))
write_result(result, epoch_s=timer.times, test_metric=float(r2_score(test_y, predicted)))
