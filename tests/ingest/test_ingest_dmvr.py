"""DMVR record layout: our records parse with DMVR's own feature specs, and DMVR's records
(written the way its examples/generate_from_file.py writes them) parse with our reader."""

from __future__ import annotations

import dataclasses
import io
import os

import numpy as np
import tensorflow as tf
from PIL import Image

from core import features
from core.config import DataSource, Ingestion
from media import decode, dmvr

ING = Ingestion(fps=8, short_side=36, clip_seconds=2.0, sample_rate=16000)

# Exactly the specs DMVR's readers use for these keys.
DMVR_CONTEXT = {
    features.LABEL_INDEX: tf.io.VarLenFeature(tf.int64),
    features.LABEL_TEXT: tf.io.VarLenFeature(tf.string),
}
DMVR_SEQUENCE = {
    features.IMAGE_ENCODED: tf.io.FixedLenSequenceFeature([], tf.string),
    features.WAVEFORM: tf.io.VarLenFeature(tf.float32),
}


def parse_like_dmvr(serialized: bytes):
    return tf.io.parse_single_sequence_example(
        serialized, context_features=DMVR_CONTEXT, sequence_features=DMVR_SEQUENCE
    )


def test_our_record_parses_with_dmvr_specs(sample_video):
    (clip,) = decode.decode_file(sample_video, "video", ING)
    meta = dmvr.ClipMetadata(
        task="motion",
        filename="motion/up/clip.mp4",
        start_us=0,
        end_us=2_000_000,
        labels=("up",),
        label_indices=(3,),
        caption="a square",
    )
    serialized = dmvr.build_sequence_example(clip, meta).SerializeToString()
    context, sequence = parse_like_dmvr(serialized)
    frames = sequence[features.IMAGE_ENCODED].numpy()
    assert frames.shape == (16,)
    assert tf.io.decode_jpeg(frames[0]).shape == (36, 48, 3)
    # DMVR reads the waveform as a sparse [1, n]: one Feature holding every sample.
    waveform = tf.sparse.to_dense(sequence[features.WAVEFORM]).numpy()
    assert waveform.shape == (1, 32000)
    assert np.allclose(waveform[0], clip.waveform)
    assert tf.sparse.to_dense(context[features.LABEL_INDEX]).numpy().tolist() == [3]
    assert tf.sparse.to_dense(context[features.LABEL_TEXT]).numpy().tolist() == [b"up"]
    parsed = dmvr.parse_sequence_example(serialized)
    assert (parsed.task, parsed.filename, parsed.caption) == (
        "motion",
        "motion/up/clip.mp4",
        "a square",
    )
    assert (parsed.start_us, parsed.end_us, parsed.frame_rate, parsed.sample_rate) == (
        0,
        2_000_000,
        8.0,
        16000,
    )


def dmvr_generator_record(frames: list[bytes], audio: list[float], label: str, index: int):
    """A record laid out as DMVR's generate_from_file.py lays it out (tf.train protos)."""
    seq = tf.train.SequenceExample()
    seq.context.feature["clip/label/index"].int64_list.value[:] = (index,)
    seq.context.feature["clip/label/text"].bytes_list.value[:] = (label.encode(),)
    seq.context.feature["caption/string"].bytes_list.value[:] = (b"hello",)
    for jpeg in frames:
        seq.feature_lists.feature_list["image/encoded"].feature.add().bytes_list.value[:] = [jpeg]
    seq.feature_lists.feature_list["WAVEFORM/feature/floats"].feature.add().float_list.value[:] = (
        audio
    )
    seq.context.feature["video/filename"].bytes_list.value[:] = (b"/videos/a.mp4",)
    seq.context.feature["clip/start/timestamp"].int64_list.value[:] = (1_500_000,)
    seq.context.feature["clip/end/timestamp"].int64_list.value[:] = (3_500_000,)
    return seq.SerializeToString()


def test_dmvr_generator_record_reads_with_our_reader(tmp_path):
    jpegs = []
    for value in (10, 200):
        out = io.BytesIO()
        Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(out, format="JPEG")
        jpegs.append(out.getvalue())
    audio = [0.0, 0.25, -0.5, 1.0]
    record = dmvr_generator_record(jpegs, audio, "dog", 4)
    # DMVR's generator writes uncompressed TFRecord shards without a .gz suffix.
    path = str(tmp_path / "train-00000-of-00001")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(record)
    (parsed,) = dmvr.read_records(str(tmp_path / "train-*"))
    assert parsed.frames == jpegs
    assert parsed.waveform.tolist() == audio
    assert (parsed.labels, parsed.label_indices, parsed.caption) == (("dog",), (4,), "hello")
    assert (parsed.filename, parsed.start_us, parsed.end_us) == (
        "/videos/a.mp4",
        1_500_000,
        3_500_000,
    )
    assert parsed.task == "" and parsed.sample_rate is None


def test_audio_only_and_image_records_have_only_their_lists(tmp_path):
    from tests.support.media import write_png, write_wav

    (audio,) = decode.decode_file(write_wav(str(tmp_path / "a.wav")), "audio", ING)
    (image,) = decode.decode_file(write_png(str(tmp_path / "a.png")), "image", ING)
    meta = dmvr.ClipMetadata(task="t", filename="f", start_us=0, end_us=0)
    audio_ex = dmvr.build_sequence_example(audio, meta)
    image_ex = dmvr.build_sequence_example(image, meta)
    assert set(audio_ex.feature_lists.feature_list) == {features.WAVEFORM}
    assert set(image_ex.feature_lists.feature_list) == {features.IMAGE_ENCODED}
    assert features.LABEL_INDEX not in audio_ex.context.feature  # unlabelled: no label keys
    _, sequence = tf.io.parse_single_sequence_example(
        image_ex.SerializeToString(),
        sequence_features={features.IMAGE_ENCODED: DMVR_SEQUENCE[features.IMAGE_ENCODED]},
    )
    assert sequence[features.IMAGE_ENCODED].shape == (1,)


def test_records_are_wire_compatible_with_tf_train(sample_video):
    (clip,) = decode.decode_file(sample_video, "video", ING)
    meta = dmvr.ClipMetadata("t", "f.mp4", 0, 2_000_000, ("a", "b"), (0, 1), "c")
    ours = dmvr.build_sequence_example(clip, meta)
    theirs = tf.train.SequenceExample.FromString(ours.SerializeToString())
    assert theirs.SerializeToString(deterministic=True) == ours.SerializeToString(
        deterministic=True
    )
    assert len(theirs.feature_lists.feature_list[features.IMAGE_ENCODED].feature) == 16


def test_building_records_does_not_import_tensorflow():
    # Beam workers and the serving client decode and build records without loading TensorFlow.
    import subprocess
    import sys

    code = (
        "import sys; from components.media_example_gen import beam_ingest; "
        "from media import decode, dmvr; "
        "dmvr.build_sequence_example(decode.DecodedClip(0, 1, [b'j'], 8.0, 1, 1, None, 0), "
        "dmvr.ClipMetadata('t', 'f', 0, 1)); print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def dmvr_audio_visual(serialized: tf.Tensor):
    """What DMVR's add_image + add_audio + add_label parse, then the audio's first step: the
    first Feature of the waveform list (`tf.sparse.to_dense(x)[0]`), which fails on a record
    without one."""
    context, sequence = parse_like_dmvr(serialized)
    waveform = tf.sparse.to_dense(sequence[features.WAVEFORM])[0]
    return context, sequence[features.IMAGE_ENCODED], waveform


def test_ingested_records_read_with_dmvr_specs_and_no_compression_argument(tmp_path):
    """`polyvit ingest`'s default output through DMVR's default reading: a plain
    TFRecordDataset(files), and the audio-visual specs, also for a video without audio."""
    from components.media_example_gen import beam_ingest
    from core.config import IngestConfig, TaskData
    from tests.support.media import write_video

    root = tmp_path / "data"
    write_video(str(root / "moves" / "up" / "loud.mp4"), seconds=2.0)
    write_video(str(root / "moves" / "up" / "mute.mp4"), seconds=2.0, audio_rate=None)
    config = IngestConfig(
        tasks=[TaskData(name="moves", modality="video", data=DataSource(root="moves"))],
        ingestion=dataclasses.replace(ING, eval_fraction=0.0),
    )
    out = str(tmp_path / "out")
    summary = beam_ingest.ingest(
        config, out, str(tmp_path / "q"), data_root=str(root), progress=False
    )
    assert summary.clips_written == 2 and summary.bad_inputs == 0
    files = tf.io.gfile.glob(features.task_file_pattern(out, features.TRAIN, "moves"))
    assert files and all(f.endswith(".tfrecord") for f in files)
    read = {}
    for serialized in tf.data.TFRecordDataset(files):
        context, frames, waveform = dmvr_audio_visual(serialized)
        name = dmvr.parse_sequence_example(serialized.numpy()).filename
        has_audio = dmvr.parse_sequence_example(serialized.numpy()).has_audio
        read[os.path.basename(name)] = (frames.shape[0], waveform.numpy(), has_audio)
        assert tf.sparse.to_dense(context[features.LABEL_TEXT]).numpy().tolist() == [b"up"]
    loud_frames, loud, loud_has_audio = read["loud.mp4"]
    mute_frames, mute, mute_has_audio = read["mute.mp4"]
    assert loud_frames == mute_frames == 16
    # The clip's length of silence at the ingestion's rate, marked as no audio.
    assert mute.shape == loud.shape == (32000,)
    assert not mute.any() and np.abs(loud).max() > 0.1
    assert (loud_has_audio, mute_has_audio) == (True, False)


def _video_record(sample_video, caption: str) -> bytes:
    (clip,) = decode.decode_file(sample_video, "video", ING)
    meta = dmvr.ClipMetadata("motion", "clip.mp4", 0, 2_000_000, caption=caption)
    return dmvr.build_sequence_example(clip, meta).SerializeToString()


def test_caption_candidates_are_kept_and_marked(sample_video):
    serialized = _video_record(sample_video, "a digit moves up | the 3 rises |")
    context, _ = tf.io.parse_single_sequence_example(
        serialized,
        context_features={
            features.CAPTION: tf.io.VarLenFeature(tf.string),
            features.HAS_CAPTION: tf.io.FixedLenFeature([], tf.int64),
        },
    )
    assert tf.sparse.to_dense(context[features.CAPTION]).numpy().tolist() == [
        b"a digit moves up",
        b"the 3 rises",
    ]
    assert int(context[features.HAS_CAPTION]) == 1
    parsed = dmvr.parse_sequence_example(serialized)
    assert (parsed.caption, parsed.captions, parsed.has_caption) == (
        "a digit moves up",
        ("a digit moves up", "the 3 rises"),
        True,
    )


def test_video_without_caption_still_parses_and_is_masked(sample_video):
    serialized = _video_record(sample_video, "")
    # DMVR's text readers take the first caption/string value: there must be one.
    context, _ = tf.io.parse_single_sequence_example(
        serialized, context_features={features.CAPTION: tf.io.FixedLenFeature([1], tf.string)}
    )
    assert context[features.CAPTION].numpy().tolist() == [b""]
    parsed = dmvr.parse_sequence_example(serialized)
    assert (parsed.captions, parsed.has_caption) == (("",), False)


def test_caption_candidates_split_on_the_separator():
    assert features.caption_candidates(" one | two||") == ("one", "two")
    assert features.caption_candidates("  ") == ()
