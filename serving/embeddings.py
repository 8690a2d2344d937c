"""VATT's embedding signatures from a client (trainer/vatt/embed_export.py is the contract):
a video file's embeddings and the ranking of candidate captions for it, both through TF
Serving's Predict API (gRPC or REST), the file decoded as ingestion decodes it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serving.client import EXAMPLES_INPUT, PolyvitClient, encode_file

EMBED_SIGNATURE, RANK_SIGNATURE, TEXT_SIGNATURE = "embed_examples", "rank_captions", "embed_text"


@dataclass
class Embedding:
    file: str
    model_version: int
    clips: int
    vectors: dict[str, list[float]]  # video_va, audio, video_vt: the clips' mean, unit length


@dataclass
class Ranking:
    file: str
    model_version: int
    clips: int
    ranked: list[tuple[str, float]]  # (caption, cosine), best first


def _unit(x: np.ndarray) -> np.ndarray:
    return x / max(float(np.linalg.norm(x)), 1e-12)


def split_captions(text: str) -> list[str]:
    """'a|b|c' -> ['a', 'b', 'c'] (blank candidates are an error)."""
    captions = [c.strip() for c in text.split("|")]
    if not captions or any(not c for c in captions):
        raise ValueError(f"--rank-captions {text!r}: give non-empty captions separated by '|'")
    return captions


def embed_file(client: PolyvitClient, path: str) -> Embedding:
    examples = encode_file(path, "video", client.ingestion)
    out = client.predict_inputs(EMBED_SIGNATURE, {EXAMPLES_INPUT: examples})
    vectors = {
        key: _unit(np.asarray(out[key], np.float64).mean(axis=0)).tolist()
        for key in ("video_va", "audio", "video_vt")
    }
    return Embedding(path, int(out["model_version"]), len(examples), vectors)


def rank_file(client: PolyvitClient, path: str, captions: list[str]) -> Ranking:
    examples = encode_file(path, "video", client.ingestion)
    out = client.predict_inputs(RANK_SIGNATURE, {EXAMPLES_INPUT: examples, "captions": captions})
    texts = [c.decode() if isinstance(c, bytes) else str(c) for c in out["captions"]]
    ranked = [(t, float(s)) for t, s in zip(texts, out["scores"], strict=True)]
    return Ranking(path, int(out["model_version"]), len(examples), ranked)
