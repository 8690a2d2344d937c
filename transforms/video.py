"""Frames (images are one-frame videos): temporal sampling, JPEG decode, crops, flip, scaling.

Training takes a random clip and a random resized crop (one box for all frames of a clip, so
motion is preserved), then maybe a horizontal flip; evaluation and serving take evenly spaced
clips and the central square, with no randomness. Pixels end in [-1, 1], the range of the
big_vision / scenic ViT checkpoints PolyViT starts from.

Random ops are stateless and take an explicit `seed` (int [2]), so a pipeline is reproducible
from its seed whatever the thread scheduling.
"""

from __future__ import annotations

import tensorflow as tf

from core.config import Inputs


def clip_starts(
    num_steps: tf.Tensor,
    clip_span: int | tf.Tensor,
    num_clips: int,
    *,
    training: bool,
    seed: tf.Tensor | None = None,
) -> tf.Tensor:
    """int32 [num_clips] start positions of clips spanning `clip_span` steps of `num_steps`.

    Training: uniformly random starts. Evaluation: one clip is the central one; several are
    evenly spaced from the first possible start to the last. Sequences shorter than a clip
    start at 0 (the caller pads them)."""
    num_steps = tf.cast(num_steps, tf.int32)
    max_start = tf.maximum(num_steps - clip_span, 0)
    if training:
        if seed is None:
            raise ValueError("clip_starts: training needs a seed")
        return tf.random.stateless_uniform(
            [num_clips], seed, minval=0, maxval=max_start + 1, dtype=tf.int32
        )
    if num_clips == 1:
        return tf.reshape(max_start // 2, [1])
    spaced = tf.linspace(0.0, tf.cast(max_start, tf.float32), num_clips)
    return tf.cast(tf.round(spaced), tf.int32)


def clip_frame_indices(
    starts: tf.Tensor, num_steps: tf.Tensor, num_frames: int, stride: int
) -> tf.Tensor:
    """int32 [num_clips, num_frames]: every `stride`-th frame from each start. A clip that runs
    past the end loops back to the first frame (DMVR's padding), so short videos are padded
    with their own frames, never dropped."""
    offsets = tf.range(num_frames, dtype=tf.int32) * stride
    return tf.math.floormod(starts[:, None] + offsets[None, :], tf.cast(num_steps, tf.int32))


def decode_frames(encoded: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
    """uint8 [*indices.shape, H, W, 3]: decodes only the frames the indices pick, each once."""
    unique, position = tf.unique(tf.reshape(indices, [-1]))
    decoded = tf.map_fn(
        lambda jpeg: tf.io.decode_jpeg(jpeg, channels=3),
        tf.gather(encoded, unique),
        fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
    )
    frames = tf.gather(decoded, position)
    frames = tf.reshape(frames, tf.concat([tf.shape(indices), tf.shape(decoded)[1:]], axis=0))
    return tf.ensure_shape(frames, indices.shape.concatenate([None, None, 3]))


def sample_frame_indices(
    num_steps: tf.Tensor,
    inputs: Inputs,
    num_frames: int,
    num_clips: int,
    *,
    training: bool,
    seed: tf.Tensor | None = None,
    filename: tf.Tensor | str = "",
) -> tf.Tensor:
    """Sample phase: int32 [num_clips, num_frames] indices into a video of `num_steps` frames,
    every `inputs.frame_stride`-th frame. Images use num_frames=1 (a random frame in training,
    the central one in evaluation). An empty video is an error naming the record."""
    check = tf.debugging.Assert(
        num_steps > 0, ["image/encoded: the record has no frames:", filename]
    )
    with tf.control_dependencies([check]):
        stride = inputs.frame_stride if num_frames > 1 else 1
        span = (num_frames - 1) * stride + 1
        starts = clip_starts(num_steps, span, num_clips, training=training, seed=seed)
        indices = clip_frame_indices(starts, num_steps, num_frames, stride)
    return tf.ensure_shape(indices, [num_clips, num_frames])


def random_crop_box(frame_shape: tf.Tensor, inputs: Inputs, seed: tf.Tensor):
    """Random resized crop box (offset [y, x, 0], size [h, w, -1]) over a frame [H, W, 3]."""
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        frame_shape,
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=(1.0 / inputs.crop_max_aspect, inputs.crop_max_aspect),
        area_range=(inputs.crop_min_area, inputs.crop_max_area),
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    return begin, size


def central_crop_box(frame_shape: tf.Tensor, fraction: float):
    """The central square covering `fraction` of the shorter side. Cropping it and resizing to
    S equals resizing the shorter side to S / fraction and cropping S in the centre."""
    height, width = frame_shape[0], frame_shape[1]
    side = tf.maximum(
        tf.cast(tf.round(tf.cast(tf.minimum(height, width), tf.float32) * fraction), tf.int32), 1
    )
    begin = tf.stack([(height - side) // 2, (width - side) // 2, 0])
    size = tf.stack([side, side, -1])
    return begin, size


def crop_and_resize(frames: tf.Tensor, begin: tf.Tensor, size: tf.Tensor, out_size: int):
    """uint8 [T, H, W, 3] -> float32 [T, out_size, out_size, 3] in [0, 255]: the same box on
    every frame, resized with antialiasing (clean when shrinking)."""
    begin = tf.concat([[0], begin], axis=0)
    size = tf.concat([[-1], size], axis=0)
    cropped = tf.slice(frames, begin, size)
    return tf.image.resize(cropped, [out_size, out_size], method="bilinear", antialias=True)


def random_flip(frames: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Flips all frames of a clip [T, H, W, C] left-right together, with probability 1/2."""
    flip = tf.random.stateless_uniform([], seed) < 0.5
    return tf.cond(flip, lambda: tf.reverse(frames, axis=[2]), lambda: frames)


def scale_pixels(frames: tf.Tensor) -> tf.Tensor:
    """[0, 255] -> [-1, 1]."""
    return tf.cast(frames, tf.float32) / 127.5 - 1.0


def preprocess_clip(
    frames: tf.Tensor,
    inputs: Inputs,
    out_size: int,
    *,
    training: bool,
    seed: tf.Tensor | None = None,
) -> tf.Tensor:
    """Preprocess phase for one clip, uint8 [T, H, W, 3] -> float32 [T, S, S, 3] in [-1, 1]."""
    frame_shape = tf.shape(frames)[1:]
    if training:
        if seed is None:
            raise ValueError("preprocess_clip: training needs a seed")
        crop_seed = tf.random.experimental.stateless_fold_in(seed, 0)
        begin, size = random_crop_box(frame_shape, inputs, crop_seed)
    else:
        begin, size = central_crop_box(frame_shape, inputs.eval_crop_fraction)
    clip = crop_and_resize(frames, begin, size, out_size)
    if training and inputs.random_flip:
        clip = random_flip(clip, tf.random.experimental.stateless_fold_in(seed, 1))
    clip = scale_pixels(clip)
    return tf.ensure_shape(clip, [frames.shape[0], out_size, out_size, 3])


def preprocess_clips(
    clips: tf.Tensor,
    inputs: Inputs,
    out_size: int,
    *,
    training: bool,
    seed: tf.Tensor | None = None,
) -> tf.Tensor:
    """[num_clips, T, H, W, 3] uint8 -> [num_clips, T, S, S, 3] float32; each clip its own
    random crop and flip in training (num_clips is static)."""
    processed = []
    for i in range(clips.shape[0]):
        clip_seed = None if seed is None else tf.random.experimental.stateless_fold_in(seed, i)
        processed.append(
            preprocess_clip(clips[i], inputs, out_size, training=training, seed=clip_seed)
        )
    return tf.stack(processed)
