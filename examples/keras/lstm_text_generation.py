# Source: https://github.com/keras-team/keras/blob/f295e8ee39d4ba841ac281a9337d69c7bc5e0eb6/examples/lstm_text_generation.py
# Repository: keras-team/keras (tag 2.3.1), commit f295e8ee39d4ba841ac281a9337d69c7bc5e0eb6
# License: MIT (full text: examples/keras/LICENSES/MIT-keras-2.3.1.txt)
# Copyright (c) 2015 - 2019, François Chollet; Copyright (c) 2015 - 2019, Google, Inc.; Copyright (c) 2017 - 2019, Microsoft, Inc.; Copyright (c) 2015 - 2019, the respective contributors. (from the LICENSE of that commit)
# Changed from the published file (nothing else was changed):
#   1. imports:
#        `from keras.callbacks import LambdaCallback` -> `from lstmlab.callbacks import LambdaCallback`
#        `from keras.models import Sequential` -> `from lstmlab.models import Sequential`
#        `from keras.layers import Dense` -> `from lstmlab.layers import Dense`
#        `from keras.layers import LSTM` -> `from lstmlab.layers import LSTM`
#        `from keras.optimizers import RMSprop` -> `from lstmlab.optimizers import RMSprop`
#        `from keras.utils.data_utils import get_file` -> `from lstmlab.utils import get_file`
#      (`keras.utils.data_utils` is not a public module in Keras 3; `get_file` lives in `keras.utils`, so the import names that module)
#   2. the download of nietzsche.txt (`get_file(...)` and the `io.open(...)` read, 5 lines) -> the synthetic-data block, which sets `text` (a lower-case str).
#   3. this header (comment lines only).
'''
#Example script to generate text from Nietzsche's writings.

At least 20 epochs are required before the generated text
starts sounding coherent.

It is recommended to run this script on GPU, as recurrent
networks are quite computationally intensive.

If you try this script on new data, make sure your corpus
has at least ~100k characters. ~1M is better.
'''

from __future__ import print_function
from lstmlab.callbacks import LambdaCallback
from lstmlab.models import Sequential
from lstmlab.layers import Dense
from lstmlab.layers import LSTM
from lstmlab.optimizers import RMSprop
from lstmlab.utils import get_file
import numpy as np
import random
import sys
import io

# --- synthetic data (replaces the download; same shapes and dtypes) ---
# nietzsche.txt is a str of ~600,000 lower-cased characters; this is a str of 3,000 lower-case
# characters (words, spaces and punctuation) from a fixed seed.
_rng = np.random.RandomState(0)
_words = ['the', 'will', 'to', 'power', 'truth', 'is', 'a', 'woman', 'and', 'of', 'what', 'we', 'call',
          'free', 'spirits', 'good', 'evil', 'beyond', 'morality', 'philosopher', ',', '.']
text = ' '.join(_rng.choice(_words, size=1000))[:3000].lower()  # str, len 3000
# --- end synthetic data ---
print('corpus length:', len(text))

chars = sorted(list(set(text)))
print('total chars:', len(chars))
char_indices = dict((c, i) for i, c in enumerate(chars))
indices_char = dict((i, c) for i, c in enumerate(chars))

# cut the text in semi-redundant sequences of maxlen characters
maxlen = 40
step = 3
sentences = []
next_chars = []
for i in range(0, len(text) - maxlen, step):
    sentences.append(text[i: i + maxlen])
    next_chars.append(text[i + maxlen])
print('nb sequences:', len(sentences))

print('Vectorization...')
x = np.zeros((len(sentences), maxlen, len(chars)), dtype=np.bool)
y = np.zeros((len(sentences), len(chars)), dtype=np.bool)
for i, sentence in enumerate(sentences):
    for t, char in enumerate(sentence):
        x[i, t, char_indices[char]] = 1
    y[i, char_indices[next_chars[i]]] = 1


# build the model: a single LSTM
print('Build model...')
model = Sequential()
model.add(LSTM(128, input_shape=(maxlen, len(chars))))
model.add(Dense(len(chars), activation='softmax'))

optimizer = RMSprop(learning_rate=0.01)
model.compile(loss='categorical_crossentropy', optimizer=optimizer)


def sample(preds, temperature=1.0):
    # helper function to sample an index from a probability array
    preds = np.asarray(preds).astype('float64')
    preds = np.log(preds) / temperature
    exp_preds = np.exp(preds)
    preds = exp_preds / np.sum(exp_preds)
    probas = np.random.multinomial(1, preds, 1)
    return np.argmax(probas)


def on_epoch_end(epoch, _):
    # Function invoked at end of each epoch. Prints generated text.
    print()
    print('----- Generating text after Epoch: %d' % epoch)

    start_index = random.randint(0, len(text) - maxlen - 1)
    for diversity in [0.2, 0.5, 1.0, 1.2]:
        print('----- diversity:', diversity)

        generated = ''
        sentence = text[start_index: start_index + maxlen]
        generated += sentence
        print('----- Generating with seed: "' + sentence + '"')
        sys.stdout.write(generated)

        for i in range(400):
            x_pred = np.zeros((1, maxlen, len(chars)))
            for t, char in enumerate(sentence):
                x_pred[0, t, char_indices[char]] = 1.

            preds = model.predict(x_pred, verbose=0)[0]
            next_index = sample(preds, diversity)
            next_char = indices_char[next_index]

            sentence = sentence[1:] + next_char

            sys.stdout.write(next_char)
            sys.stdout.flush()
        print()

print_callback = LambdaCallback(on_epoch_end=on_epoch_end)

model.fit(x, y,
          batch_size=128,
          epochs=60,
          callbacks=[print_callback])
