"""The RPCs' logic, transport-free: requests in, responses out, ServingError for refusals.

The gRPC servicers wrap these; infra validation and warm-up call them in-process, so every
path answers the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    predict_pb2,
)

from core.config import Serving
from serving import errors, examples, tensors
from serving.layout import EXAMPLES_INPUT
from serving.model_manager import LoadedVersion, ModelManager
from serving.servable import CLASSIFY_METHOD, DEFAULT_SIGNATURE, PREDICT_METHOD

SIGNATURE_DEF_FIELD = "signature_def"
CLASSIFY_INPUTS = "inputs"
CLASSIFY_CLASSES, CLASSIFY_SCORES = "classes", "scores"
REGRESS_METHOD = "tensorflow/serving/regress"


class Handlers:
    def __init__(self, managers: Mapping[str, ModelManager], max_frames: int = Serving.max_frames):
        self._managers = dict(managers)
        self.max_frames = max_frames

    def _version_of(self, model_spec) -> int | None:
        choice = model_spec.WhichOneof("version_choice")
        if choice == "version":
            return model_spec.version.value
        if choice == "version_label":
            manager = self._managers.get(model_spec.name)
            if manager is None:
                raise errors.unknown_version_label(model_spec.version_label)
            return manager.version_for_label(model_spec.version_label)
        return None

    def resolve(self, model_spec) -> LoadedVersion:
        """The loaded version a ModelSpec asks for, or NOT_FOUND as TF Serving words it."""
        version = self._version_of(model_spec)
        manager = self._managers.get(model_spec.name)
        if manager is None:
            raise errors.servable_not_found(model_spec.name, version)
        return manager.get(version)

    # -- PredictionService --------------------------------------------------------------------

    def predict(self, request) -> predict_pb2.PredictResponse:
        return predict_on(self.resolve(request.model_spec), request, self.max_frames)

    def classify(self, request) -> classification_pb2.ClassificationResponse:
        return classify_on(self.resolve(request.model_spec), request, self.max_frames)

    def get_model_metadata(self, request) -> get_model_metadata_pb2.GetModelMetadataResponse:
        if not request.HasField("model_spec"):
            raise errors.missing_model_spec()
        if not request.metadata_field:
            raise errors.invalid_argument(
                "GetModelMetadataRequest must specify at least one metadata_field"
            )
        for field in request.metadata_field:
            if field != SIGNATURE_DEF_FIELD:
                raise errors.invalid_argument(f"Metadata field {field} is not supported")
        loaded = self.resolve(request.model_spec)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = loaded.servable.name
        response.model_spec.version.value = loaded.version
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature_def in loaded.servable.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(signature_def)
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
        return response

    # -- ModelService -------------------------------------------------------------------------

    def get_model_status(self, request) -> get_model_status_pb2.GetModelStatusResponse:
        if not request.HasField("model_spec"):
            raise errors.missing_model_spec()
        spec = request.model_spec
        version = self._version_of(spec)
        manager = self._managers.get(spec.name)
        states = manager.states() if manager else {}
        if version is not None:
            if version not in states:
                raise errors.ServingError(
                    errors.grpc.StatusCode.NOT_FOUND,
                    f"Could not find version {version} of model {spec.name}",
                )
            states = {version: states[version]}
        elif not states:
            raise errors.ServingError(
                errors.grpc.StatusCode.NOT_FOUND,
                f"Could not find any versions of model {spec.name}",
            )
        response = get_model_status_pb2.GetModelStatusResponse()
        for version in sorted(states, reverse=True):  # newest first, as TF Serving lists them
            state = states[version]
            entry = response.model_version_status.add()
            entry.version = version
            entry.state = state.state
            entry.status.error_code = state.error_code
            entry.status.error_message = state.error_message
        return response


def _output_aliases(signature_def, output_filter) -> list[str]:
    if not output_filter:
        return sorted(signature_def.outputs)
    seen = []
    for alias in output_filter:
        if alias not in signature_def.outputs:
            raise errors.invalid_argument(
                f"output tensor alias not found in signature: {alias} Outputs expected to be in "
                f"the set {{{','.join(sorted(signature_def.outputs))}}}."
            )
        if alias in seen:
            raise errors.invalid_argument(f"duplicate output tensor alias: {alias}")
        seen.append(alias)
    return seen


def predict_signature(loaded: LoadedVersion, signature_name: str):
    """The (name, SignatureDef) a Predict request runs, or TF Serving's refusal."""
    name, signature_def = loaded.servable.signature(signature_name)
    if signature_def.method_name not in (PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD):
        raise errors.internal(
            f"Expected prediction signature method_name to be one of {{{PREDICT_METHOD}, "
            f"{CLASSIFY_METHOD}, {REGRESS_METHOD}}}. Was: {signature_def.method_name}"
        )
    return name, signature_def


def check_contents(inputs: Mapping[str, np.ndarray], max_frames: int) -> None:
    """The export contract's content checks (serving.examples) on checked input arrays."""
    for alias, array in inputs.items():
        if alias == EXAMPLES_INPUT and array.dtype == object:
            examples.check_sequence_examples(array.reshape(-1), max_frames)
        examples.check_raw_frames(alias, array, max_frames)


def predict_arrays(
    loaded: LoadedVersion,
    signature_name: str,
    arrays: Mapping[str, np.ndarray],
    output_filter=(),
    max_frames: int = Serving.max_frames,
) -> tuple[str, dict[str, np.ndarray]]:
    """Predict on numpy inputs (REST): the signature's name and its filtered outputs."""
    name, signature_def = predict_signature(loaded, signature_name)
    inputs = tensors.check_arrays(signature_def, arrays)
    check_contents(inputs, max_frames)
    aliases = _output_aliases(signature_def, output_filter)
    outputs = loaded.predict(name, inputs)
    return name, {alias: outputs[alias] for alias in aliases}


def predict_on(
    loaded: LoadedVersion, request, max_frames: int = Serving.max_frames
) -> predict_pb2.PredictResponse:
    name, signature_def = predict_signature(loaded, request.model_spec.signature_name)
    inputs = tensors.check_inputs(signature_def, request.inputs)
    check_contents(inputs, max_frames)
    aliases = _output_aliases(signature_def, request.output_filter)
    outputs = loaded.predict(name, inputs)
    response = predict_pb2.PredictResponse()
    response.model_spec.name = loaded.servable.name
    response.model_spec.version.value = loaded.version
    response.model_spec.signature_name = name
    for alias in aliases:
        tensors.fill_tensor_proto(response.outputs[alias], outputs[alias])
    return response


def serialized_examples(request_input) -> list[bytes]:
    """A Classify request's tf.Examples, serialized; the context merged into each (TF Serving)."""
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        return [e.SerializeToString() for e in request_input.example_list.examples]
    if kind == "example_list_with_context":
        listed = request_input.example_list_with_context
        merged = []
        for example in listed.examples:
            combined = example_pb2.Example()
            combined.CopyFrom(listed.context)
            combined.MergeFrom(example)  # the example's own features win over the context's
            merged.append(combined.SerializeToString())
        return merged
    return []


def _check_classify_output(name: str, array: np.ndarray | None, rows: int) -> None:
    if array is None:
        return
    if array.ndim != 2:
        raise errors.invalid_argument(
            f"Expected Tensor shape: [batch_size num_classes] but got {list(array.shape)}"
        )
    if array.shape[0] != rows:
        raise errors.invalid_argument(
            f"Expected {name} output batch size of {rows}. Got: {array.shape[0]}"
        )


def classify_on(
    loaded: LoadedVersion, request, max_frames: int = Serving.max_frames
) -> classification_pb2.ClassificationResponse:
    name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    signature_def = loaded.servable.signature_defs.get(name)
    if signature_def is None or name not in loaded.servable.functions:
        raise errors.classify_signature_not_found(name)
    if signature_def.method_name != CLASSIFY_METHOD:
        raise errors.invalid_argument(
            f"Expected classification signature method_name to be {CLASSIFY_METHOD}. "
            f"Was: {signature_def.method_name}"
        )
    if CLASSIFY_INPUTS not in signature_def.inputs:
        raise errors.ServingError(
            errors.grpc.StatusCode.FAILED_PRECONDITION,
            f"No classification inputs found in SignatureDef: {name}",
        )
    kind = request.input.WhichOneof("kind")
    listed = getattr(request.input, kind).examples if kind else []
    examples.check_examples(listed, max_frames)
    serialized = serialized_examples(request.input)
    if not serialized:
        raise errors.invalid_argument("Input is empty.")
    outputs = loaded.predict(name, {CLASSIFY_INPUTS: np.array(serialized, dtype=object)})
    classes, scores = outputs.get(CLASSIFY_CLASSES), outputs.get(CLASSIFY_SCORES)
    if classes is None and scores is None:
        raise errors.ServingError(
            errors.grpc.StatusCode.FAILED_PRECONDITION,
            'Expected classification signature outputs to contain at least one of "classes" '
            f'or "scores". Signature was: {name}',
        )
    _check_classify_output("classes", classes, len(serialized))
    _check_classify_output("scores", scores, len(serialized))
    response = classification_pb2.ClassificationResponse()
    response.model_spec.name = loaded.servable.name
    response.model_spec.version.value = loaded.version
    response.model_spec.signature_name = name
    some_output = classes if classes is not None else scores
    assert some_output is not None  # checked above
    num_classes = some_output.shape[1]
    for i in range(len(serialized)):
        entry = response.result.classifications.add()
        for c in range(num_classes):
            item = entry.classes.add()
            if classes is not None:
                item.label = classes[i, c].decode() if isinstance(classes[i, c], bytes) else ""
            if scores is not None:
                item.score = float(scores[i, c])
    return response


def replay_warmup(loaded: LoadedVersion, logs) -> int:
    """Runs a version's warm-up PredictionLogs on it; any refusal means the version is unfit."""
    count = 0
    for log in logs:
        kind = log.WhichOneof("log_type")
        if kind == "predict_log":
            predict_on(loaded, log.predict_log.request)
        elif kind == "classify_log":
            classify_on(loaded, log.classify_log.request)
        else:
            raise errors.invalid_argument(f"warm-up record of type {kind} is not supported")
        count += 1
    return count
