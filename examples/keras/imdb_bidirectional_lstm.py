# Source: https://github.com/keras-team/keras/blob/f295e8ee39d4ba841ac281a9337d69c7bc5e0eb6/examples/imdb_bidirectional_lstm.py
# Repository: keras-team/keras (tag 2.3.1), commit f295e8ee39d4ba841ac281a9337d69c7bc5e0eb6
# License: MIT (full text: examples/keras/LICENSES/MIT-keras-2.3.1.txt)
# Copyright (c) 2015 - 2019, François Chollet; Copyright (c) 2015 - 2019, Google, Inc.; Copyright (c) 2017 - 2019, Microsoft, Inc.; Copyright (c) 2015 - 2019, the respective contributors. (from the LICENSE of that commit)
# Changed from the published file (nothing else was changed):
#   1. imports:
#        `from keras.preprocessing import sequence` -> `from lstmlab.preprocessing import sequence`
#        `from keras.models import Sequential` -> `from lstmlab.models import Sequential`
#        `from keras.layers import Dense, Dropout, Embedding, LSTM, Bidirectional` -> `from lstmlab.layers import Dense, Dropout, Embedding, LSTM, Bidirectional`
#        `from keras.datasets import imdb` -> removed
#      (the `keras.datasets` import is removed with the download it served: lstmlab has no datasets module)
#   2. `imdb.load_data(num_words=max_features)` (1 line) -> the synthetic-data block, which sets `x_train`, `y_train`, `x_test`, `y_test`.
#   3. this header (comment lines only).
'''
#Trains a Bidirectional LSTM on the IMDB sentiment classification task.

Output after 4 epochs on CPU: ~0.8146
Time per epoch on CPU (Core i7): ~150s.
'''

from __future__ import print_function
import numpy as np

from lstmlab.preprocessing import sequence
from lstmlab.models import Sequential
from lstmlab.layers import Dense, Dropout, Embedding, LSTM, Bidirectional


max_features = 20000
# cut texts after this number of words
# (among top max_features most common words)
maxlen = 100
batch_size = 32

print('Loading data...')
# --- synthetic data (replaces the download; same shapes and dtypes) ---
# imdb.load_data(num_words=20000) returns 1-D object arrays of Python int lists (25,000 reviews
# each, word indices in [1, num_words), lengths ~10..2,500) and int64 label arrays of 0/1.
# Here: 64 training and 32 test reviews of lengths 5..300, from a fixed seed.
_rng = np.random.RandomState(0)
x_train = np.empty(64, dtype=object)  # (64,) object: lists of int
x_test = np.empty(32, dtype=object)  # (32,) object: lists of int
for _x in (x_train, x_test):
    for _i in range(len(_x)):
        _x[_i] = [1] + _rng.randint(2, max_features, size=_rng.randint(5, 300)).tolist()
y_train = _rng.randint(0, 2, size=64).astype(np.int64)  # (64,) int64
y_test = _rng.randint(0, 2, size=32).astype(np.int64)  # (32,) int64
# --- end synthetic data ---
print(len(x_train), 'train sequences')
print(len(x_test), 'test sequences')

print('Pad sequences (samples x time)')
x_train = sequence.pad_sequences(x_train, maxlen=maxlen)
x_test = sequence.pad_sequences(x_test, maxlen=maxlen)
print('x_train shape:', x_train.shape)
print('x_test shape:', x_test.shape)
y_train = np.array(y_train)
y_test = np.array(y_test)

model = Sequential()
model.add(Embedding(max_features, 128, input_length=maxlen))
model.add(Bidirectional(LSTM(64)))
model.add(Dropout(0.5))
model.add(Dense(1, activation='sigmoid'))

# try using different optimizers and different optimizer configs
model.compile('adam', 'binary_crossentropy', metrics=['accuracy'])

print('Train...')
model.fit(x_train, y_train,
          batch_size=batch_size,
          epochs=4,
          validation_data=[x_test, y_test])
