"""ServingValidator's work: a model that answers its warm-up requests is stamped with them; a
model that cannot be loaded, or records it cannot answer, block the push with the reason."""

import os

from serving_models import LABELS, TASK, export_model, sequence_example, tiny_jpeg

from components.serving_validator.component import stamp_and_validate
from core import features
from serving import layout
from tests.support import records
from tests.support.records import write_examples_artifact


def _examples(root, records: list[bytes]) -> str:
    """An Examples artifact folder with one task's eval records and its vocabulary."""
    return write_examples_artifact(str(root), {features.EVAL: {TASK: records}}, {TASK: LABELS})


def test_a_model_that_answers_is_stamped_with_its_warmup_requests(tmp_path):
    model = export_model(str(tmp_path / "model"), bias=0.0)
    examples = _examples(tmp_path / "examples", [sequence_example(3)])
    stamped = str(tmp_path / "blessing" / "stamped_model")
    failure, answered = stamp_and_validate(model, examples, stamped, "polyvit")
    assert failure is None and answered == 1
    (log,) = layout.read_warmup_requests(stamped)
    assert log.predict_log.request.model_spec.signature_name == TASK
    assert os.path.exists(os.path.join(stamped, "saved_model.pb"))


def test_a_model_that_cannot_load_is_refused_with_the_reason(tmp_path):
    model = export_model(str(tmp_path / "model"), bias=0.0)
    with open(os.path.join(model, "saved_model.pb"), "r+b") as f:
        f.truncate(100)
    examples = _examples(tmp_path / "examples", [sequence_example(3)])
    failure, answered = stamp_and_validate(model, examples, str(tmp_path / "s"), "polyvit")
    assert answered == 0 and "cannot load the model" in failure


def test_a_task_without_eval_records_is_refused_naming_it(tmp_path):
    model = export_model(str(tmp_path / "model"), bias=0.0)
    examples = _examples(tmp_path / "examples", [])
    failure, _ = stamp_and_validate(model, examples, str(tmp_path / "s"), "polyvit")
    assert f"task {TASK!r}: no eval example" in failure


def test_a_model_with_embedding_signatures_is_asked_those_too(tmp_path):
    """A VATT-pretrained model's embedding signatures get warm-up requests, built from the
    eval record that has frames and a waveform (here an unlabelled task's, no vocabulary)."""
    model = export_model(str(tmp_path / "model"), bias=0.0, embeddings=True)
    clip = records.record(frames=[tiny_jpeg()] * 2, waveform=[0.1, -0.2, 0.3])
    examples = write_examples_artifact(
        str(tmp_path / "examples"),
        {features.EVAL: {TASK: [sequence_example(3)], "clips": [clip]}},
        {TASK: LABELS},
    )
    stamped = str(tmp_path / "blessing" / "stamped_model")
    failure, answered = stamp_and_validate(model, examples, stamped, "polyvit")
    assert failure is None and answered == 4
    by_signature = {
        log.predict_log.request.model_spec.signature_name: log.predict_log.request
        for log in layout.read_warmup_requests(stamped)
    }
    assert set(by_signature) == {TASK, "embed_examples", "embed_text", "rank_captions"}
    assert set(by_signature["rank_captions"].inputs) == {"examples", "captions"}
    rank_examples = by_signature["rank_captions"].inputs["examples"].string_val
    assert list(rank_examples) == [clip]

    # Without such a record the embedding signatures cannot be asked: not pushed, and why.
    images_only = write_examples_artifact(
        str(tmp_path / "images"), {features.EVAL: {TASK: [sequence_example(3)]}}, {TASK: LABELS}
    )
    failure, _ = stamp_and_validate(model, images_only, str(tmp_path / "s2"), "polyvit")
    assert "no task's eval records have both" in failure
