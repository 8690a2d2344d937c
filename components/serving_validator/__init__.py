"""Infra validation: the candidate must load in the serving machinery and answer real requests."""
