"""The project's tests; `tests.support` holds the helpers they share."""
