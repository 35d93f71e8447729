"""Project-wide pytest configuration: keep framework logs quiet and runs reproducible."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
