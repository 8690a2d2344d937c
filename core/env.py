"""Process environment the stack needs, set before TensorFlow is first imported: the ONE place.

TFX 1.16 and TFMA need Keras 2 (`tf_keras`); TensorFlow's C++ start-up messages (CUDA plugin
registration on a machine without GPUs) and gRPC's C core drown the progress output. Users
never have to export these themselves: every entry point imports this module first
(pipeline.cli, the package __init__s, tests/conftest.py, the benchmarks), and the variables
reach the subprocesses that Beam and TFX start. A value already in the environment wins.

The only other place that sets them is the Dockerfile, for one reason: TFX's Kubeflow
container entry point imports TensorFlow before any module of ours, so there they must be set
before Python starts (a test checks the image sets the same values). Logging and third-party
warnings are core/logs.py's business, not this module's.
"""

import os

ENVIRONMENT = {
    "TF_USE_LEGACY_KERAS": "1",  # tf.keras is Keras 2 (tf_keras), as TFX 1.16 and TFMA need
    "TF_CPP_MIN_LOG_LEVEL": "3",  # TensorFlow's C++ logging: errors of TF's own only
    "GRPC_VERBOSITY": "ERROR",  # gRPC's C core: no fork-support and DNS notices
}

for _name, _value in ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)

# Start-up time. TFX imports every component, the InfraValidator imports `kubernetes`, which
# imports `kubernetes_validate`, whose `jsonschema` then imports the optional `rfc3987_syntax`
# (installed with jupyter's `jsonschema[format-nongpl]`): it compiles a Lark grammar at import,
# a quarter of an unchanged `polyvit run` (benchmarks/rerun.py). It only adds jsonschema's
# "iri" format checks, which nothing here uses (format checks are off unless asked for), so
# its import fails fast instead (None in sys.modules: Python's documented "not importable").
# POLYVIT_IMPORT_RFC3987_SYNTAX=1 keeps it.
if os.environ.get("POLYVIT_IMPORT_RFC3987_SYNTAX") != "1":
    import sys

    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
