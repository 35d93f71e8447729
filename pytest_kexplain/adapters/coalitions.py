"""Batch sizing for coalition evaluation (Shapley values): many small rows, forward only."""

from __future__ import annotations

import numpy as np

# Forward-only calls on mixed inputs keep no activations for a backward pass, so they can be
# larger than gradient batches; throughput on small tabular models keeps rising up to a few
# hundred thousand rows per call (see docs/performance.md).
COALITION_ELEMENTS_PER_BATCH = 2**23
MAX_COALITION_ROWS_PER_BATCH = 2**18


def coalition_batch_size(sample_shape: tuple[int, ...]) -> int:
    """Model rows per call when evaluating coalitions of samples of this shape."""
    sample_size = max(1, int(np.prod(sample_shape)))
    return int(np.clip(COALITION_ELEMENTS_PER_BATCH // sample_size, 16,
                       MAX_COALITION_ROWS_PER_BATCH))
