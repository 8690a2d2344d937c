"""VATT's contrastive losses: NCE between video and audio, MIL-NCE between video and text.

Embeddings are L2-normalised, similarities divided by a temperature. Negatives are the other
clips of the GLOBAL batch: inside a tf.distribute replica context every replica gathers the
embeddings of all replicas (`all_gather`), scores its own clips against all of them, and
returns its share of the global mean, so summing the replica values (what the trainer's
gradient all-reduce does) gives the loss of one device holding the whole batch. Outside a
strategy the default replica context gathers nothing and the batch is the global one.

Masks (1 = present): a clip without audio (`audio/has_audio` = 0) or without a caption
(`caption/has_caption` = 0) is neither an anchor nor a negative of that pair's loss; a caption
candidate with `text_mask` 0 (padding of a clip with fewer candidates) is not scored.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

# Logit of an excluded pair: exp() of it is 0 in float32, and it stays finite so a row with
# every pair excluded does not produce NaN (such rows are masked out of the mean anyway).
_EXCLUDED = -1e9


@dataclasses.dataclass(frozen=True)
class GlobalBatch:
    """A tensor gathered over replicas and where this replica's rows sit in it."""

    values: tf.Tensor
    offset: tf.Tensor  # int32: index of this replica's first row in `values`


def gather_global(local: tf.Tensor) -> GlobalBatch:
    """`local` [b, ...] of every replica concatenated along axis 0 (replica order)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return GlobalBatch(local, tf.constant(0, tf.int32))
    values = context.all_gather(local, axis=0)
    sizes = context.all_gather(tf.shape(local)[:1], axis=0)
    replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
    offset = tf.reduce_sum(sizes[:replica])
    return GlobalBatch(values, offset)


def _mean_over_global(per_example: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """This replica's share of the masked mean over the global batch."""
    total = tf.reduce_sum(gather_global(mask).values)
    return tf.reduce_sum(per_example * mask) / tf.maximum(total, 1.0)


def _mask_or_ones(mask: tf.Tensor | None, like: tf.Tensor) -> tf.Tensor:
    if mask is None:
        return tf.ones(tf.shape(like)[:1], tf.float32)
    return tf.cast(tf.reshape(mask, [-1]), tf.float32)


def nce_loss(
    video: tf.Tensor,
    audio: tf.Tensor,
    temperature: float,
    mask: tf.Tensor | None = None,
) -> tf.Tensor:
    """Symmetric NCE of paired embeddings [b, d] (mean of video->audio and audio->video)."""
    video = tf.math.l2_normalize(tf.cast(video, tf.float32), axis=-1)
    audio = tf.math.l2_normalize(tf.cast(audio, tf.float32), axis=-1)
    mask = _mask_or_ones(mask, video)
    all_video, all_audio, all_mask = (gather_global(x) for x in (video, audio, mask))
    positives = all_video.offset + tf.range(tf.shape(video)[0])
    excluded = (1.0 - all_mask.values)[None, :] * _EXCLUDED

    def one_way(anchors, others):
        logits = tf.matmul(anchors, others, transpose_b=True) / temperature + excluded
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=positives, logits=logits)

    per_example = 0.5 * (one_way(video, all_audio.values) + one_way(audio, all_video.values))
    return _mean_over_global(per_example, mask)


def mil_nce_loss(
    video: tf.Tensor,
    text: tf.Tensor,
    temperature: float,
    text_mask: tf.Tensor | None = None,
    mask: tf.Tensor | None = None,
) -> tf.Tensor:
    """MIL-NCE (Miech et al. 2020) of video [b, d] against k candidate captions [b, k, d].

    For clip i: -log( sum_k e(v_i, t_ik) / (sum_k e(v_i, t_ik) + sum_{j!=i,k} e(v_i, t_jk)
    + sum_{j!=i,k} e(v_j, t_ik)) ), e(x, y) = exp(x.y / temperature), over present candidates.
    """
    video = tf.math.l2_normalize(tf.cast(video, tf.float32), axis=-1)
    text = tf.math.l2_normalize(tf.cast(text, tf.float32), axis=-1)
    local, k = tf.shape(text)[0], tf.shape(text)[1]
    text_mask = (
        tf.ones([local, k], tf.float32) if text_mask is None else tf.cast(text_mask, tf.float32)
    )
    mask = _mask_or_ones(mask, video) * tf.cast(tf.reduce_any(text_mask > 0, axis=1), tf.float32)
    all_video, all_text = gather_global(video), gather_global(text)
    all_text_mask, all_mask = gather_global(text_mask), gather_global(mask)
    total = tf.shape(all_video.values)[0]
    own = tf.one_hot(all_video.offset + tf.range(local), total)  # [b, B]: clip i is row i
    present = all_text_mask.values * all_mask.values[:, None]  # [B, k]
    # Video i against every caption of every clip: [b, B, k].
    v2t = tf.einsum("id,jkd->ijk", video, all_text.values) / temperature
    v2t += (1.0 - present)[None] * _EXCLUDED
    # Every clip's video against clip i's captions, other clips only: [b, B, k].
    t2v = tf.einsum("jd,ikd->ijk", all_video.values, text) / temperature
    t2v += (1.0 - text_mask)[:, None, :] * _EXCLUDED
    t2v += (own + (1.0 - all_mask.values)[None])[:, :, None] * _EXCLUDED
    positive = tf.reduce_logsumexp(
        v2t + (1.0 - own)[:, :, None] * _EXCLUDED, axis=[1, 2]
    )  # own captions only
    denominator = tf.reduce_logsumexp(
        tf.concat([tf.reshape(v2t, [local, -1]), tf.reshape(t2v, [local, -1])], axis=1), axis=1
    )
    return _mean_over_global(denominator - positive, mask)


def vatt_loss(
    embeddings: dict[str, tf.Tensor],
    masks: dict[str, tf.Tensor],
    temperature: float,
    audio_weight: float,
    text_weight: float,
) -> dict[str, tf.Tensor]:
    """The weighted sum of both pair losses and each of them (this replica's shares).

    embeddings: `video_va`, `audio` [b, d_va]; `video_vt` [b, d_vt], `text` [b, k, d_vt].
    masks: `audio` [b], `text` [b, k] (1 = present).
    """
    out = {}
    if audio_weight:
        out["nce_video_audio"] = nce_loss(
            embeddings["video_va"], embeddings["audio"], temperature, masks.get("audio")
        )
    if text_weight:
        out["mil_nce_video_text"] = mil_nce_loss(
            embeddings["video_vt"], embeddings["text"], temperature, masks.get("text")
        )
    out["loss"] = audio_weight * out.get("nce_video_audio", 0.0) + text_weight * out.get(
        "mil_nce_video_text", 0.0
    )
    return out
