# Source: https://github.com/keras-team/keras/blob/f295e8ee39d4ba841ac281a9337d69c7bc5e0eb6/examples/imdb_cnn_lstm.py
# Repository: keras-team/keras (tag 2.3.1), commit f295e8ee39d4ba841ac281a9337d69c7bc5e0eb6
# License: MIT (full text: examples/keras/LICENSES/MIT-keras-2.3.1.txt)
# Copyright (c) 2015 - 2019, François Chollet; Copyright (c) 2015 - 2019, Google, Inc.; Copyright (c) 2017 - 2019, Microsoft, Inc.; Copyright (c) 2015 - 2019, the respective contributors. (from the LICENSE of that commit)
# Changed from the published file (nothing else was changed):
#   1. imports:
#        `from keras.preprocessing import sequence` -> `from lstmlab.preprocessing import sequence`
#        `from keras.models import Sequential` -> `from lstmlab.models import Sequential`
#        `from keras.layers import Dense, Dropout, Activation` -> `from lstmlab.layers import Dense, Dropout, Activation`
#        `from keras.layers import Embedding` -> `from lstmlab.layers import Embedding`
#        `from keras.layers import LSTM` -> `from lstmlab.layers import LSTM`
#        `from keras.layers import Conv1D, MaxPooling1D` -> `from lstmlab.layers import Conv1D, MaxPooling1D`
#        `from keras.datasets import imdb` -> removed
#      (the `keras.datasets` import is removed with the download it served: lstmlab has no datasets module)
#   2. `imdb.load_data(num_words=max_features)` (1 line) -> the synthetic-data block, which sets `x_train`, `y_train`, `x_test`, `y_test`
#      (the block imports NumPy itself, which the published file does not import).
#   3. this header (comment lines only).
'''
#Train a recurrent convolutional network on the IMDB sentiment classification task.

Gets to 0.8498 test accuracy after 2 epochs. 41 s/epoch on K520 GPU.
'''
from __future__ import print_function

from lstmlab.preprocessing import sequence
from lstmlab.models import Sequential
from lstmlab.layers import Dense, Dropout, Activation
from lstmlab.layers import Embedding
from lstmlab.layers import LSTM
from lstmlab.layers import Conv1D, MaxPooling1D

# Embedding
max_features = 20000
maxlen = 100
embedding_size = 128

# Convolution
kernel_size = 5
filters = 64
pool_size = 4

# LSTM
lstm_output_size = 70

# Training
batch_size = 30
epochs = 2

'''
Note:
batch_size is highly sensitive.
Only 2 epochs are needed as the dataset is very small.
'''

print('Loading data...')
# --- synthetic data (replaces the download; same shapes and dtypes) ---
# imdb.load_data(num_words=20000) returns 1-D object arrays of Python int lists (25,000 reviews
# each, word indices in [1, num_words), lengths ~10..2,500) and int64 label arrays of 0/1.
# Here: 60 training and 30 test reviews of lengths 5..300, from a fixed seed.
import numpy as np
_rng = np.random.RandomState(0)
x_train = np.empty(60, dtype=object)  # (60,) object: lists of int
x_test = np.empty(30, dtype=object)  # (30,) object: lists of int
for _x in (x_train, x_test):
    for _i in range(len(_x)):
        _x[_i] = [1] + _rng.randint(2, max_features, size=_rng.randint(5, 300)).tolist()
y_train = _rng.randint(0, 2, size=60).astype(np.int64)  # (60,) int64
y_test = _rng.randint(0, 2, size=30).astype(np.int64)  # (30,) int64
# --- end synthetic data ---
print(len(x_train), 'train sequences')
print(len(x_test), 'test sequences')

print('Pad sequences (samples x time)')
x_train = sequence.pad_sequences(x_train, maxlen=maxlen)
x_test = sequence.pad_sequences(x_test, maxlen=maxlen)
print('x_train shape:', x_train.shape)
print('x_test shape:', x_test.shape)

print('Build model...')

model = Sequential()
model.add(Embedding(max_features, embedding_size, input_length=maxlen))
model.add(Dropout(0.25))
model.add(Conv1D(filters,
                 kernel_size,
                 padding='valid',
                 activation='relu',
                 strides=1))
model.add(MaxPooling1D(pool_size=pool_size))
model.add(LSTM(lstm_output_size))
model.add(Dense(1))
model.add(Activation('sigmoid'))

model.compile(loss='binary_crossentropy',
              optimizer='adam',
              metrics=['accuracy'])

print('Train...')
model.fit(x_train, y_train,
          batch_size=batch_size,
          epochs=epochs,
          validation_data=(x_test, y_test))
score, acc = model.evaluate(x_test, y_test, batch_size=batch_size)
print('Test score:', score)
print('Test accuracy:', acc)
