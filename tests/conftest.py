import os
import sys

sys.path.insert(0, os.path.dirname(__file__))  # tests/helpers.py

os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 is an oracle in the tests; it runs on PyTorch here
