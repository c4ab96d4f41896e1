# Source: https://github.com/keras-team/keras-io/blob/0a4be8bbc3ae126f3ca49a0bf173902866ec06f0/examples/nlp/bidirectional_lstm_imdb.py
# Repository: keras-team/keras-io, commit 0a4be8bbc3ae126f3ca49a0bf173902866ec06f0
# License: Apache-2.0 (full text: examples/keras/LICENSES/Apache-2.0.txt)
# Copyright the author named in the docstring (fchollet) / the Keras team; keras-io carries no per-file copyright line.
# Changed from the published file (nothing else was changed):
#   1. imports:
#        `from tensorflow import keras` -> `import lstmlab as keras`
#        `from tensorflow.keras import layers` -> `from lstmlab import layers`
#   2. `keras.datasets.imdb.load_data(num_words=max_features)` (3 lines) -> the synthetic-data block, which sets `x_train`, `y_train`, `x_val`, `y_val`.
#   3. this header (comment lines only).
"""
Title: Bidirectional LSTM on IMDB
Author: [fchollet](https://twitter.com/fchollet)
Date created: 2020/05/03
Last modified: 2020/05/03
Description: Train a 2-layer bidirectional LSTM on the IMDB movie review sentiment classification dataset.
"""
"""
## Setup
"""

import numpy as np
import lstmlab as keras
from lstmlab import layers

max_features = 20000  # Only consider the top 20k words
maxlen = 200  # Only consider the first 200 words of each movie review

"""
## Build the model
"""

# Input for variable-length sequences of integers
inputs = keras.Input(shape=(None,), dtype="int32")
# Embed each integer in a 128-dimensional vector
x = layers.Embedding(max_features, 128)(inputs)
# Add 2 bidirectional LSTMs
x = layers.Bidirectional(layers.LSTM(64, return_sequences=True))(x)
x = layers.Bidirectional(layers.LSTM(64))(x)
# Add a classifier
outputs = layers.Dense(1, activation="sigmoid")(x)
model = keras.Model(inputs, outputs)
model.summary()

"""
## Load the IMDB movie review sentiment data
"""

# --- synthetic data (replaces the download; same shapes and dtypes) ---
# imdb.load_data(num_words=20000) returns 1-D object arrays of Python int lists (25,000 reviews
# each, word indices in [1, num_words), lengths ~10..2,500) and int64 label arrays of 0/1.
# Here: 64 training and 32 validation reviews of lengths 5..300, from a fixed seed.
_rng = np.random.RandomState(0)
x_train = np.empty(64, dtype=object)  # (64,) object: lists of int
x_val = np.empty(32, dtype=object)  # (32,) object: lists of int
for _x in (x_train, x_val):
    for _i in range(len(_x)):
        _x[_i] = [1] + _rng.randint(2, max_features, size=_rng.randint(5, 300)).tolist()
y_train = _rng.randint(0, 2, size=64).astype(np.int64)  # (64,) int64
y_val = _rng.randint(0, 2, size=32).astype(np.int64)  # (32,) int64
# --- end synthetic data ---
print(len(x_train), "Training sequences")
print(len(x_val), "Validation sequences")
# Use pad_sequence to standardize sequence length:
# this will truncate sequences longer than 200 words and zero-pad sequences shorter than 200 words.
x_train = keras.preprocessing.sequence.pad_sequences(x_train, maxlen=maxlen)
x_val = keras.preprocessing.sequence.pad_sequences(x_val, maxlen=maxlen)

"""
## Train and evaluate the model

You can use the trained model hosted on [Hugging Face Hub](https://huggingface.co/keras-io/bidirectional-lstm-imdb)
and try the demo on [Hugging Face Spaces](https://huggingface.co/spaces/keras-io/bidirectional_lstm_imdb).
"""

model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=32, epochs=2, validation_data=(x_val, y_val))
