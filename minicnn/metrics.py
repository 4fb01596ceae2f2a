"""Classification metrics: top-k accuracy and error, the confusion matrix.

    acc1, acc5 = metrics.topk_accuracy(logits, target)          # k=(1, 5): a tuple of fractions
    acc1 = metrics.topk_accuracy(logits, target, k=1)           # an int k: one float
    err1, err5 = metrics.topk_error(logits, target)             # 1 - accuracy (ImageNet's "error")
    cm = metrics.confusion_matrix(logits.argmax(1), target, 10) # rows: true class, columns: predicted

Shapes: `logits` (N, C) scores (any monotone transform of them, e.g. softmax, gives the same
answer), `target` (N,) integer classes in 0..C-1. Tensors and numpy arrays are both accepted.

Conventions, stated once:
- A sample is top-k correct when its true class is among the k highest scores. Equal scores
  (ties) are ranked by class index, lower index first, exactly as `np.argmax` picks the first
  maximum; so top-1 accuracy always equals `mean(argmax(logits, 1) == target)`. In the rank
  formula below, the true class t of a sample with scores s has
      rank(t) = #{c : s_c > s_t} + #{c < t : s_c == s_t}       (0 = the best)
  and it is top-k correct when rank(t) < k.
- k larger than the number of classes C is clipped to C (every sample is then correct): top-5
  accuracy on a 3-class problem is 1.0, as "the true class is among the 5 best" always holds.
- A sample whose scores contain NaN counts as wrong for every k (a diverged model scores 0, not
  a lucky 1).
"""
import numpy as np


def _array(x):
    """The numpy array behind a Tensor (fetched from the GPU if needed), or `np.asarray(x)`."""
    if hasattr(x, "numpy") and hasattr(x, "data") and not isinstance(x, np.ndarray):
        return x.numpy()
    return np.asarray(x)


def _check_target(name, target, n, num_classes):
    if target.ndim != 1 or target.shape[0] != n:
        raise ValueError(f"{name}: expected target of shape ({n},), got {target.shape}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer class targets, got dtype {target.dtype}")
    if n and (target.min() < 0 or target.max() >= num_classes):
        bad = target[(target < 0) | (target >= num_classes)][0]
        raise ValueError(f"{name}: target classes must lie in 0..{num_classes - 1}, got {int(bad)}")


def _check_k(name, k):
    ks = (k,) if np.isscalar(k) else tuple(k)
    if not ks:
        raise ValueError(f"{name}: expected at least one k, got {k!r}")
    for kk in ks:
        if isinstance(kk, (bool, np.bool_)) or not isinstance(kk, (int, np.integer)) or kk < 1:
            raise ValueError(f"{name}: k must be positive integers, got {k!r}")
    return ks


def target_rank(logits, target, _name="target_rank"):
    """rank of the true class among the scores of each sample: 0 = highest score. (N,) int64.

    Ties go to the lower class index (see the module docstring); rows with a NaN get rank C
    (never correct).
    """
    logits, target = _array(logits), _array(target)
    if logits.ndim != 2:
        raise ValueError(f"{_name}: expected logits of shape (N, C), got {logits.shape}")
    n, c = logits.shape
    _check_target(_name, target, n, c)
    s_t = logits[np.arange(n), target][:, None]               # (N, 1) score of the true class
    above = (logits > s_t).sum(axis=1)                          # strictly better classes
    before = np.arange(c)[None, :] < target[:, None]            # classes that win a tie
    ties = ((logits == s_t) & before).sum(axis=1)
    rank = (above + ties).astype(np.int64)
    rank[np.isnan(logits).any(axis=1)] = c
    return rank


def topk_correct(logits, target, k=(1, 5)):
    """How many samples are top-k correct, for each k: a tuple of ints (an int when k is an int).

    Summing these over batches and dividing by the number of samples gives the accuracy of a
    whole data set (what `train.evaluate` does).
    """
    return _topk_correct(logits, target, k, "topk_correct")


def _topk_correct(logits, target, k, name):
    ks = _check_k(name, k)
    rank = target_rank(logits, target, name)
    c = _array(logits).shape[1]
    counts = tuple(int((rank < min(kk, c)).sum()) for kk in ks)
    return counts[0] if np.isscalar(k) else counts


def topk_accuracy(logits, target, k=(1, 5)):
    """Fraction of samples whose true class is among the k highest scores.

    `logits` (N, C), `target` (N,) integer classes. `k` a tuple/list of ints gives a tuple of
    floats in [0, 1], one per k; an int `k` gives a single float. k > C is clipped to C. Ties:
    lower class index wins (top-1 agrees with `argmax`). An empty batch (N = 0) is an error.
    """
    ks = _check_k("topk_accuracy", k)
    logits, target = _array(logits), _array(target)
    if logits.ndim == 2 and logits.shape[0] == 0:
        raise ValueError("topk_accuracy: got an empty batch (N = 0); accuracy is undefined")
    counts = _topk_correct(logits, target, ks, "topk_accuracy")
    accs = tuple(cnt / logits.shape[0] for cnt in counts)
    return accs[0] if np.isscalar(k) else accs


def topk_error(logits, target, k=(1, 5)):
    """1 - topk_accuracy: the "top-1 / top-5 error" the ImageNet papers report."""
    acc = topk_accuracy(logits, target, k)
    return 1.0 - acc if np.isscalar(k) else tuple(1.0 - a for a in acc)


def accuracy(logits, target):
    """Top-1 accuracy: the fraction with `argmax(logits, 1) == target`."""
    return topk_accuracy(logits, target, k=1)


def confusion_matrix(pred, target, num_classes):
    """counts[i, j] = number of samples of TRUE class i predicted as class j. (C, C) int64.

    `pred` is either predicted classes (N,) or scores (N, C), which are reduced with argmax.
    The diagonal holds the correct predictions; `counts.trace() / counts.sum()` is the accuracy.
    """
    pred, target = _array(pred), _array(target)
    if isinstance(num_classes, (bool, np.bool_)) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 1:
        raise ValueError(f"confusion_matrix: num_classes must be a positive int, got {num_classes!r}")
    if pred.ndim == 2:
        if pred.shape[1] != num_classes:
            raise ValueError(f"confusion_matrix: scores of shape {pred.shape} do not have "
                             f"num_classes={num_classes} columns")
        pred = np.argmax(pred, axis=1)
    if pred.ndim != 1:
        raise ValueError(f"confusion_matrix: expected pred of shape (N,) or (N, C), got {pred.shape}")
    if pred.dtype.kind not in "iu":
        raise TypeError(f"confusion_matrix: expected integer predicted classes, got dtype {pred.dtype}")
    _check_target("confusion_matrix", target, pred.shape[0], num_classes)
    if pred.size and (pred.min() < 0 or pred.max() >= num_classes):
        bad = pred[(pred < 0) | (pred >= num_classes)][0]
        raise ValueError(f"confusion_matrix: predicted classes must lie in 0..{num_classes - 1}, "
                         f"got {int(bad)}")
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (target.astype(np.int64), pred.astype(np.int64)), 1)
    return counts
