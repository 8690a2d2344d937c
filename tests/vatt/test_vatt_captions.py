"""Caption words, the frequency-ranked vocabulary and the padded id grid of one record."""

from __future__ import annotations

import tensorflow as tf

from transforms import captions


def test_words_are_lower_cased_and_split_on_punctuation():
    words = captions.caption_words(tf.constant(["The 3 moves UP!", "  ", "left,right"]))
    assert words.to_list() == [[b"the", b"3", b"moves", b"up"], [], [b"left", b"right"]]


def test_vocabulary_ranks_by_count_then_alphabetically_and_truncates():
    text = captions.vocabulary_text([b"up", b"the", b"down", b"the", "up", b"a"], 3)
    assert text == "the\nup\na\n"


def test_caption_ids_pad_truncate_and_mask():
    table = captions.word_table(["the", "digit", "moves", "up"])
    ids, present = captions.caption_ids(
        tf.constant(["The digit moves up fast", ""]), table, length=4, max_captions=3
    )
    # the=2 digit=3 moves=4 up=5 (fast truncated); the empty caption is padding; a third
    # candidate slot is added.
    assert ids.numpy().tolist() == [[2, 3, 4, 5], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert present.numpy().tolist() == [1.0, 0.0, 0.0]
    ids, present = captions.caption_ids(tf.constant(["a up", "up", "moves"]), table, 3, 2)
    assert ids.numpy().tolist() == [[captions.OOV_ID, 5, 0], [5, 0, 0]]
    assert present.numpy().tolist() == [1.0, 1.0]


def test_an_empty_vocabulary_is_a_clear_error():
    try:
        captions.word_table([])
    except ValueError as e:
        assert "caption/string" in str(e)
    else:
        raise AssertionError("an empty vocabulary was accepted")
