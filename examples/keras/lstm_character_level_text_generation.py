# Source: https://github.com/keras-team/keras-io/blob/0a09cb6c7ca6769be21d946338c87563314c93db/examples/generative/lstm_character_level_text_generation.py
# Repository: keras-team/keras-io, commit 0a09cb6c7ca6769be21d946338c87563314c93db
# License: Apache-2.0 (full text: examples/keras/LICENSES/Apache-2.0.txt)
# Copyright the author named in the docstring (fchollet) / the Keras team; keras-io carries no per-file copyright line.
# Changed from the published file (nothing else was changed):
#   1. imports:
#        `from tensorflow import keras` -> `import lstmlab as keras`
#        `from tensorflow.keras import layers` -> `from lstmlab import layers`
#   2. the download of nietzsche.txt (`keras.utils.get_file(...)` and the `io.open(...)` read, 5 lines) -> the synthetic-data block, which sets `text` (a lower-case str).
#   3. this header (comment lines only).
"""
Title: Character-level text generation with LSTM
Author: [fchollet](https://twitter.com/fchollet)
Date created: 2015/06/15
Last modified: 2020/04/30
Description: Generate text from Nietzsche's writings with a character-level LSTM.
"""
"""
## Introduction

This example demonstrates how to use a LSTM model to generate
text character-by-character.

At least 20 epochs are required before the generated text
starts sounding locally coherent.

It is recommended to run this script on GPU, as recurrent
networks are quite computationally intensive.

If you try this script on new data, make sure your corpus
has at least ~100k characters. ~1M is better.
"""

"""
## Setup
"""
import lstmlab as keras
from lstmlab import layers

import numpy as np
import random
import sys
import io

"""
## Prepare the data
"""

# --- synthetic data (replaces the download; same shapes and dtypes) ---
# nietzsche.txt is a str of ~600,000 lower-cased characters; this is a str of 3,000 lower-case
# characters (words, spaces and punctuation) from a fixed seed.
_rng = np.random.RandomState(0)
_words = ["the", "will", "to", "power", "truth", "is", "a", "woman", "and", "of", "what", "we", "call",
          "free", "spirits", "good", "evil", "beyond", "morality", "philosopher", ",", "."]
text = " ".join(_rng.choice(_words, size=1000))[:3000].lower()  # str, len 3000
# --- end synthetic data ---
print("corpus length:", len(text))

chars = sorted(list(set(text)))
print("total chars:", len(chars))
char_indices = dict((c, i) for i, c in enumerate(chars))
indices_char = dict((i, c) for i, c in enumerate(chars))

# cut the text in semi-redundant sequences of maxlen characters
maxlen = 40
step = 3
sentences = []
next_chars = []
for i in range(0, len(text) - maxlen, step):
    sentences.append(text[i : i + maxlen])
    next_chars.append(text[i + maxlen])
print("nb sequences:", len(sentences))

print("Vectorization...")
x = np.zeros((len(sentences), maxlen, len(chars)), dtype=np.bool)
y = np.zeros((len(sentences), len(chars)), dtype=np.bool)
for i, sentence in enumerate(sentences):
    for t, char in enumerate(sentence):
        x[i, t, char_indices[char]] = 1
    y[i, char_indices[next_chars[i]]] = 1


"""
## Build the model: a single LSTM layer
"""

model = keras.Sequential(
    [
        keras.Input(shape=(maxlen, len(chars))),
        layers.LSTM(128),
        layers.Dense(len(chars), activation="softmax"),
    ]
)
optimizer = keras.optimizers.RMSprop(learning_rate=0.01)
model.compile(loss="categorical_crossentropy", optimizer=optimizer)

"""
## Prepare the text sampling function
"""


def sample(preds, temperature=1.0):
    # helper function to sample an index from a probability array
    preds = np.asarray(preds).astype("float64")
    preds = np.log(preds) / temperature
    exp_preds = np.exp(preds)
    preds = exp_preds / np.sum(exp_preds)
    probas = np.random.multinomial(1, preds, 1)
    return np.argmax(probas)


"""
## Train the model
"""

epochs = 40
batch_size = 128

for epoch in range(epochs):
    model.fit(x, y, batch_size=batch_size, epochs=1)

    print("Generating text after epoch: %d" % epoch)

    start_index = random.randint(0, len(text) - maxlen - 1)
    for diversity in [0.2, 0.5, 1.0, 1.2]:
        print("----- diversity:", diversity)

        generated = ""
        sentence = text[start_index : start_index + maxlen]
        generated += sentence
        print('----- Generating with seed: "' + sentence + '"')
        sys.stdout.write(generated)

        for i in range(400):
            x_pred = np.zeros((1, maxlen, len(chars)))
            for t, char in enumerate(sentence):
                x_pred[0, t, char_indices[char]] = 1.0

            preds = model.predict(x_pred, verbose=0)[0]
            next_index = sample(preds, diversity)
            next_char = indices_char[next_index]

            sentence = sentence[1:] + next_char

            sys.stdout.write(next_char)
            sys.stdout.flush()
        print()
