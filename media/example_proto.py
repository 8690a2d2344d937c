"""`tf.train.SequenceExample`'s protobuf messages, without importing TensorFlow.

Importing `tensorflow.core.example.example_pb2` loads all of TensorFlow (about 8 s and 600 MB
per process), which every Beam worker and the serving client would pay just to build records.
This module declares the same messages (TensorFlow's feature.proto and example.proto: proto3,
same field numbers and types, so the wire format is the same; deterministic serializations are
byte-identical) in a private descriptor pool, under the package `polyvit.tfexample` so that they
never clash with TensorFlow's own classes in the same process.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "polyvit.tfexample"
_F = descriptor_pb2.FieldDescriptorProto


def _field(message, name: str, number: int, kind: int, type_name: str = "", repeated=False):
    field = message.field.add(name=name, number=number, type=kind)
    field.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    if type_name:
        field.type_name = f".{_PACKAGE}.{type_name}"
    return field


def _map_message(file, name: str, field_name: str, value_type: str) -> None:
    """message <name> { map<string, <value_type>> <field_name> = 1; }"""
    message = file.message_type.add(name=name)
    entry_name = "".join(p.capitalize() for p in field_name.split("_")) + "Entry"
    entry = message.nested_type.add(name=entry_name)
    entry.options.map_entry = True
    _field(entry, "key", 1, _F.TYPE_STRING)
    _field(entry, "value", 2, _F.TYPE_MESSAGE, value_type)
    _field(message, field_name, 1, _F.TYPE_MESSAGE, f"{name}.{entry_name}", repeated=True)


def _file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="polyvit/tfexample.proto", package=_PACKAGE, syntax="proto3"
    )
    for name, kind in (
        ("BytesList", _F.TYPE_BYTES),
        ("FloatList", _F.TYPE_FLOAT),
        ("Int64List", _F.TYPE_INT64),
    ):
        _field(file.message_type.add(name=name), "value", 1, kind, repeated=True)
    feature = file.message_type.add(name="Feature")
    feature.oneof_decl.add(name="kind")
    for number, (name, type_name) in enumerate(
        (("bytes_list", "BytesList"), ("float_list", "FloatList"), ("int64_list", "Int64List")),
        1,
    ):
        _field(feature, name, number, _F.TYPE_MESSAGE, type_name).oneof_index = 0
    _map_message(file, "Features", "feature", "Feature")
    _field(
        file.message_type.add(name="FeatureList"), "feature", 1, _F.TYPE_MESSAGE, "Feature", True
    )
    _map_message(file, "FeatureLists", "feature_list", "FeatureList")
    for message_name, fields in (
        ("Example", (("features", "Features"),)),
        ("SequenceExample", (("context", "Features"), ("feature_lists", "FeatureLists"))),
    ):
        message = file.message_type.add(name=message_name)
        for number, (name, type_name) in enumerate(fields, 1):
            _field(message, name, number, _F.TYPE_MESSAGE, type_name)
    return file


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())


def _message(name: str):
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.{name}"))


Feature = _message("Feature")
FeatureList = _message("FeatureList")
Example = _message("Example")
SequenceExample = _message("SequenceExample")
