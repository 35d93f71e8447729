"""Differentiation backends: one module per Keras backend, each with `build_functions`."""
