"""The Tuner stage: TFX Tuner with an executor that records every trial and its scores."""
