"""The dynamic batcher on its own: merged requests, and a refused one merged with good ones."""

from __future__ import annotations

import numpy as np
import pytest

from serving import errors
from serving.batching import BatchingOptions, DynamicBatcher


def _refuse_negatives(signature, inputs):
    """Stands for a signature whose graph refuses a row, naming it (as checked_input does)."""
    x = inputs["x"]
    bad = np.flatnonzero(x < 0)
    if bad.size:
        raise errors.invalid_argument(f"x[{bad[0]}]: negative")
    return {"y": 2 * x}


def test_a_refused_request_fails_alone_and_names_its_own_row():
    calls = []

    def run(signature, inputs):
        calls.append(len(inputs["x"]))
        return _refuse_negatives(signature, inputs)

    # A full batch of 3 runs at once; the timeout never expires during the test.
    options = BatchingOptions(3, 60_000_000, 1, 4)
    batcher = DynamicBatcher(run, options)
    try:
        futures = [
            batcher.submit("s", {"x": np.array([value], np.float32)}, 1) for value in (1, -1, 3)
        ]
        np.testing.assert_array_equal(futures[0].result(20)["y"], [2.0])
        np.testing.assert_array_equal(futures[2].result(20)["y"], [6.0])
        with pytest.raises(errors.ServingError) as caught:
            futures[1].result(20)
    finally:
        batcher.close()
        batcher.join(20)
    assert caught.value.code == errors.grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.message == "x[0]: negative"  # its own row, not the merged batch's
    assert calls == [3, 1, 1, 1]  # the merged call, then each request on its own


def test_other_failures_are_every_merged_requests_answer():
    def run(signature, inputs):
        raise errors.internal("the model broke")

    batcher = DynamicBatcher(run, BatchingOptions(2, 60_000_000, 1, 4))
    try:
        futures = [batcher.submit("s", {"x": np.zeros([1], np.float32)}, 1) for _ in range(2)]
        for future in futures:
            with pytest.raises(errors.ServingError, match="the model broke"):
                future.result(20)
    finally:
        batcher.close()
        batcher.join(20)
