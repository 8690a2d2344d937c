"""IV-ViT's video path: a clip is a batch of frames through the image path, fused late.

    clip [B, T, S, S, 3] --fold--> frames [B*T, S, S, 3] --image tokenizer, shared encoder-->
        class tokens [B*T, hidden] --fuse--> logits [B, num_classes]

Fusion (`model.late_fusion`): `logits` runs the task head on every frame and averages the
logits; `features` averages the class tokens and runs the head once. Either way the only
video-specific weights are the task's head, so one set of weights serves images and videos
(`model.video_encoding: frames`). The hook sits in `PolyViT.call`, which training, evaluation
and the exported signatures all go through, so serving fuses exactly as training does.
"""

from __future__ import annotations

import tensorflow as tf

FRAMES = "frames"
FUSIONS = ("logits", "features")


def token_modality(modality: str, video_encoding: str) -> str:
    """The modality whose tokenizer (and modality layers) encode `modality`'s inputs."""
    return "image" if modality == "video" and video_encoding == FRAMES else modality


def fold_frames(clip: tf.Tensor) -> tf.Tensor:
    """[B, T, S, S, C] -> [B*T, S, S, C]: frame t of clip b at row b*T + t."""
    if clip.shape.rank != 5:
        raise ValueError(f"late fusion: expected a clip [B, T, S, S, C], got shape {clip.shape}")
    frame = clip.shape[2:]
    if not frame.is_fully_defined():
        raise ValueError(f"late fusion: the frame shape must be static, got {clip.shape}")
    return tf.reshape(clip, [-1, *frame.as_list()])


def mean_over_frames(per_frame: tf.Tensor, num_frames: int) -> tf.Tensor:
    """[B*T, D] (rows as `fold_frames` lays them out) -> [B, D], the mean over each clip's T."""
    grouped = tf.reshape(per_frame, [-1, num_frames, per_frame.shape[-1]])
    return tf.reduce_mean(grouped, axis=1)


def fused_logits(model, clip: tf.Tensor, task: str, fusion: str, training=False) -> tf.Tensor:
    """Logits [B, num_classes] of `task` for `clip`, its frames encoded as images by `model`
    (a PolyViT) and fused by `fusion` (`logits` or `features`)."""
    if fusion not in FUSIONS:
        raise ValueError(f"late fusion: unknown fusion {fusion!r}; expected one of {FUSIONS}")
    num_frames = clip.shape[1]
    if num_frames is None:
        raise ValueError("late fusion: the clip's number of frames must be static")
    tokens = model.encode(fold_frames(clip), "image", training=training)  # [B*T, hidden]
    head = model.heads[task]
    if fusion == "logits":
        return mean_over_frames(head(tokens), num_frames)
    return head(mean_over_frames(tokens, num_frames))
