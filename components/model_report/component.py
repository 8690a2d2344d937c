"""`ModelReport`: the TFX component that writes the model report (report.py) as an artifact.

Inputs: the Evaluator's ModelEvaluation (TFMA output: candidate, and the baseline's numbers
when there was one) and ModelBlessing, the Trainer's Model and ModelRun (training curves and
the trainer's own eval numbers), this run's Examples (label vocabularies), the Examples the
Trainer read (one artifact, or one per span of `continuous.span_window`: the spans the report
names) and, with VATT pretraining, the Pretrainer's Model (retrieval and linear-probe figures)
and, with tuning, the Tuner's TunerResults (every trial and its per-task scores). Output: a
`ModelReport` artifact holding index.html; its `decision` custom property is BLESSED or NOT_BLESSED.
Parameter: `config_json`, the JSON of the report's slice of the config (report.ReportConfig).

Optional inputs are `InputArtifact[...] = None` (the decorator's form of optional).
(No `from __future__ import annotations` here: the @component decorator reads the real type
annotations of the function.)
"""

from tfx import v1 as tfx
from tfx.types import artifact

from components.model_report import report as report_lib
from core import config as config_lib


class ModelReportArtifact(artifact.Artifact):
    """A folder with index.html (opens from disk), PNG pictures and summary.json."""

    # TFX's KFP v2 entry point imports the artifact class from its type name, so the name is
    # the class's import path.
    TYPE_NAME = "components.ModelReportArtifact"  # <module>.<Class>: KFP v2 imports it by name


def report_config_json(config: config_lib.Config) -> str:
    """The component's `config_json` parameter: the JSON of the report's slice only
    (report.ReportConfig), so that only edits to what the report shows change it."""
    return config_lib.slice_to_json(report_lib.report_config(config))


def trained_spans(examples: list) -> list[int]:
    """TFX's span property of each Examples artifact (0 without spans), as MediaExampleGen
    writes it, each span once."""
    return sorted({a.get_int_custom_property("span") for a in examples})


@tfx.dsl.components.component
def ModelReport(
    evaluation: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
    report: tfx.dsl.components.OutputArtifact[ModelReportArtifact],
    config_json: tfx.dsl.components.Parameter[str],
    blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing] = None,
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model] = None,
    model_run: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelRun] = None,
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples] = None,
    training_examples: tfx.dsl.components.InputArtifact[
        list[tfx.types.standard_artifacts.Examples]
    ] = None,
    pretrained_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model] = None,
    tuner_results: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.TunerResults
    ] = None,
) -> None:
    """Writes the report of `evaluation` into the `report` artifact."""
    config = config_lib.slice_from_json(
        config_json, report_lib.ReportConfig, "ModelReport parameter 'config_json'"
    )
    roots = tuple(a.uri for a in (model_run, model) if a is not None)
    summary = report_lib.write_report(
        report.uri,
        config,
        evaluation.uri,
        blessing_uri=blessing.uri if blessing is not None else None,
        model_roots=roots,
        examples_uri=examples.uri if examples is not None else None,
        spans=trained_spans(training_examples or ([examples] if examples is not None else [])),
        pretrained_model_uri=pretrained_model.uri if pretrained_model is not None else None,
        tuner_results_uri=tuner_results.uri if tuner_results is not None else None,
    )
    report.set_string_custom_property("decision", summary["decision"])
    report.set_string_custom_property("index", report.uri.rstrip("/") + "/" + report_lib.INDEX)
