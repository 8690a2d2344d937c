"""The bottom layer: the typed config, the record contract, the schema, the process environment
(env), the logging set-up (logs) and the command line's config loader. Imports no TensorFlow
(a test checks it)."""
