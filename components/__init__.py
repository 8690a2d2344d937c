"""Custom TFX components (MediaExampleGen, data validation, model report, serving validation).

TFX's Kubeflow v2 compiler only accepts custom artifact type names of the form
`<module>.<Class>`, and its container entry point imports the class by that name; this package
is that module for the project's artifact types, exposed lazily so that importing
`components` stays cheap.
"""

import core.env  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

_ARTIFACT_TYPES = {
    "MediaQuarantine": "components.media_example_gen.executor",
    "ModelReportArtifact": "components.model_report.component",
}


def __getattr__(name: str):
    if name in _ARTIFACT_TYPES:
        import importlib

        return getattr(importlib.import_module(_ARTIFACT_TYPES[name]), name)
    raise AttributeError(f"module 'components' has no attribute {name!r}")
