"""minicnn.metrics: top-k accuracy/error and the confusion matrix, on hand-made logits and
against a plain sorting oracle (ties: lower class index first, as argmax)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
from minicnn import metrics


def oracle_topk(logits, target, k):
    """Fraction of rows whose target is among the first k of a stable descending sort."""
    hits = 0
    n, c = logits.shape
    for i in range(n):
        row = logits[i]
        if np.isnan(row).any():
            continue
        order = sorted(range(c), key=lambda j: (-row[j], j))  # ties: lower index first
        hits += target[i] in order[:min(k, c)]
    return hits / n


LOGITS = np.array([[0.1, 0.5, 0.2, 0.9],    # order 3, 1, 2, 0
                   [2.0, 1.0, 0.0, -1.0],   # order 0, 1, 2, 3
                   [0.0, 0.0, 3.0, 1.0],    # order 2, 3, 0, 1
                   [1.0, 4.0, 3.0, 2.0]])   # order 1, 2, 3, 0
TARGET = np.array([1, 0, 1, 0])             # ranks 1, 0, 3, 3


def test_hand_made_top1_top2_top4():
    assert metrics.topk_accuracy(LOGITS, TARGET, k=(1, 2, 3, 4)) == (0.25, 0.5, 0.5, 1.0)
    assert metrics.topk_error(LOGITS, TARGET, k=(1, 2)) == (0.75, 0.5)
    assert metrics.topk_correct(LOGITS, TARGET, (1, 2)) == (1, 2)
    np.testing.assert_array_equal(metrics.target_rank(LOGITS, TARGET), [1, 0, 3, 3])


def test_int_k_gives_float_tuple_k_gives_tuple():
    acc = metrics.topk_accuracy(LOGITS, TARGET, k=2)
    assert isinstance(acc, float) and acc == 0.5
    accs = metrics.topk_accuracy(LOGITS, TARGET, k=[1, 2])
    assert isinstance(accs, tuple) and accs == (0.25, 0.5)
    assert metrics.topk_error(LOGITS, TARGET, k=1) == 0.75
    assert metrics.accuracy(LOGITS, TARGET) == 0.25


def test_default_k_is_top1_top5_and_k_above_classes_is_clipped():
    # 4 classes: "top-5" means every class, so every sample counts as correct
    assert metrics.topk_accuracy(LOGITS, TARGET) == (0.25, 1.0)
    assert metrics.topk_accuracy(LOGITS, TARGET, k=100) == 1.0


def test_ties_go_to_the_lower_class_index_like_argmax():
    logits = np.zeros((4, 3))          # every score tied
    target = np.array([0, 1, 2, 2])
    assert metrics.topk_accuracy(logits, target, k=(1, 2, 3)) == (0.25, 0.5, 1.0)
    # a tie between the target and a lower class: the lower class wins top-1
    logits = np.array([[1.0, 1.0, 0.0]])
    assert metrics.topk_accuracy(logits, np.array([1]), k=(1, 2)) == (0.0, 1.0)
    assert metrics.topk_accuracy(logits, np.array([0]), k=1) == 1.0


def test_nan_rows_count_as_wrong():
    logits = np.array([[np.nan, 0.0, 0.0], [0.0, 1.0, 0.0]])
    target = np.array([1, 1])
    assert metrics.topk_accuracy(logits, target, k=(1, 3)) == (0.5, 0.5)


def test_accepts_tensors_and_float32():
    acc = metrics.topk_accuracy(mc.Tensor(LOGITS), mc.Tensor(TARGET), k=(1, 2))
    assert acc == (0.25, 0.5)
    assert metrics.topk_accuracy(LOGITS.astype(np.float32), TARGET, k=1) == 0.25


@given(st.data())
def test_matches_sorting_oracle_with_many_ties(data):
    n = data.draw(st.integers(1, 12))
    c = data.draw(st.integers(1, 7))
    seed = data.draw(st.integers(0, 2 ** 31))
    rng = np.random.default_rng(seed)
    logits = rng.integers(-2, 3, size=(n, c)).astype(np.float64)  # few values: many ties
    target = rng.integers(0, c, size=n)
    ks = (1, 2, 3, 5, 9)
    got = metrics.topk_accuracy(logits, target, k=ks)
    want = tuple(oracle_topk(logits, target, k) for k in ks)
    assert got == pytest.approx(want, abs=0)
    # top-1 is exactly argmax accuracy
    assert got[0] == np.mean(np.argmax(logits, axis=1) == target)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"topk_accuracy: expected logits of shape \(N, C\), got \(4,\)"):
        metrics.topk_accuracy(np.zeros(4), TARGET)
    with pytest.raises(ValueError, match=r"topk_accuracy: expected target of shape \(4,\), got \(3,\)"):
        metrics.topk_accuracy(LOGITS, TARGET[:3])
    with pytest.raises(TypeError, match="topk_accuracy: expected integer class targets, got dtype float64"):
        metrics.topk_accuracy(LOGITS, TARGET.astype(float))
    with pytest.raises(ValueError, match=r"topk_accuracy: target classes must lie in 0..3, got 4"):
        metrics.topk_accuracy(LOGITS, np.array([0, 1, 4, 0]))
    with pytest.raises(ValueError, match="topk_accuracy: k must be positive integers, got 0"):
        metrics.topk_accuracy(LOGITS, TARGET, k=0)
    with pytest.raises(ValueError, match="topk_accuracy: got an empty batch"):
        metrics.topk_accuracy(np.zeros((0, 3)), np.zeros(0, dtype=np.int64))


def test_confusion_matrix_by_hand():
    pred = np.array([0, 1, 1, 2, 2, 2])
    target = np.array([0, 1, 2, 2, 2, 0])
    cm = metrics.confusion_matrix(pred, target, 3)
    np.testing.assert_array_equal(cm, [[1, 0, 1],    # true 0: once right, once called 2
                                       [0, 1, 0],
                                       [0, 1, 2]])   # true 2: once called 1, twice right
    assert cm.dtype == np.int64
    assert cm.trace() / cm.sum() == pytest.approx(4 / 6)


def test_confusion_matrix_from_logits_and_tensors_matches_accuracy():
    cm = metrics.confusion_matrix(mc.Tensor(LOGITS), mc.Tensor(TARGET), 4)
    assert cm.sum() == 4
    assert cm.trace() / cm.sum() == metrics.accuracy(LOGITS, TARGET)
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(TARGET, minlength=4))


def test_confusion_matrix_errors():
    with pytest.raises(ValueError, match=r"confusion_matrix: predicted classes must lie in 0..2, got 3"):
        metrics.confusion_matrix(np.array([3]), np.array([0]), 3)
    with pytest.raises(ValueError, match=r"confusion_matrix: target classes must lie in 0..2, got -1"):
        metrics.confusion_matrix(np.array([0]), np.array([-1]), 3)
    with pytest.raises(ValueError, match="confusion_matrix: scores of shape \\(4, 4\\) do not have num_classes=3"):
        metrics.confusion_matrix(LOGITS, TARGET, 3)
    with pytest.raises(ValueError, match="confusion_matrix: num_classes must be a positive int, got 0"):
        metrics.confusion_matrix(np.array([0]), np.array([0]), 0)
