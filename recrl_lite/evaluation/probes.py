r"""Linear probes: how much of a label a fixed representation makes linearly readable.

Introduced in chapter 6 ("Large models in the loop"), to compare what frozen language-model
embeddings of item titles (:mod:`recrl_lite.models.language`) and a bag-of-words baseline tell a
linear model about an item, on items that the probe was *not* trained on.

A linear probe (Alain & Bengio, ICLR 2017 workshop, "Understanding intermediate layers using
linear classifier probes") fits a logistic regression on top of frozen features,

.. math:: p(y = 1 \mid x) = \sigma\big(w^\top z(x) + b\big),\qquad
          z(x) = (x - \mu_{\text{train}}) / \sigma_{\text{train}},

with an L2 penalty :math:`\lVert w \rVert_2^2 / (2C)`, and is scored by the ROC AUC on held-out
items: the probability that a random positive item gets a higher score than a random negative one
(Hanley & McNeil, Radiology 1982), 0.5 for a useless feature and 1.0 for a perfect one.

The baseline, :func:`bag_of_words_features`, is a binary bag of words whose vocabulary is fitted on
the **training** texts only. A word that never occurs in a training title has no column, so a test
title made only of such words becomes the all-zero vector and the probe can only give it the
intercept's score. That is the limitation chapter 6 measures: a new item described with new words
is invisible to the baseline, while the language model maps "headset" near "headphones".

scikit-learn is imported inside the functions, so ``import recrl_lite`` stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recrl_lite.errors import invalid, invalid_type

# Word tokens of one or more characters (scikit-learn's default needs two, which would drop
# "5" in "size 5" or "x" in "2 x 4" without saying so).
_TOKEN_PATTERN = r"(?u)\b\w+\b"


def _texts(texts: Any, name: str) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise invalid_type(name, texts, "a sequence of strings", why="not a single string")
    if not isinstance(texts, Sequence) and hasattr(texts, "tolist"):  # numpy array, pandas Series
        texts = texts.tolist()
    if not isinstance(texts, Sequence):
        raise invalid_type(name, texts, "a sequence of strings")
    if len(texts) == 0:
        raise invalid(name, texts, "a non-empty sequence of strings")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise invalid_type(f"{name}[{i}]", text, "a str")
    return [str(t) for t in texts]


def bag_of_words_features(train_texts: Sequence[str], test_texts: Sequence[str],
                          ngram_range: tuple[int, int] = (1, 1)) -> tuple[np.ndarray, np.ndarray]:
    """Binary bag-of-words matrices ``(train, test)``, float64, with the vocabulary of ``train_texts`` only.

    Lower-cased word tokens (letters/digits/underscore runs); ``ngram_range=(1, 2)`` adds bigrams.
    Column ``j`` is 1 if the text contains the ``j``-th training n-gram. Words unseen in training
    have no column: a test text made only of them is an all-zero row (the baseline's limitation).
    """
    from sklearn.feature_extraction.text import CountVectorizer

    train = _texts(train_texts, "train_texts")
    test = _texts(test_texts, "test_texts")
    if (not isinstance(ngram_range, tuple) or len(ngram_range) != 2
            or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in ngram_range)
            or not 1 <= ngram_range[0] <= ngram_range[1]):
        raise invalid("ngram_range", ngram_range, "a tuple (low, high) of integers with 1 <= low <= high")
    vectorizer = CountVectorizer(binary=True, lowercase=True, token_pattern=_TOKEN_PATTERN,
                                 ngram_range=(int(ngram_range[0]), int(ngram_range[1])), dtype=np.float64)
    try:
        train_matrix = vectorizer.fit_transform(train)
    except ValueError as error:  # "empty vocabulary": no training text has a word token
        raise invalid("train_texts", train, "texts with at least one word token",
                      why=f"none of the {len(train)} texts has one: {error}") from error
    test_matrix = vectorizer.transform(test)
    return np.asarray(train_matrix.toarray()), np.asarray(test_matrix.toarray())


def _features(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 2:
        raise invalid(name, array, "a 2-D array (n_samples, n_features)")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise invalid(name, array, "at least one sample and one feature")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise invalid(name, array, "numeric features")
    array = array.astype(np.float64)
    bad = ~np.isfinite(array)
    if bad.any():
        where = [[int(i), int(j)] for i, j in np.argwhere(bad)[:5]]
        raise invalid(name, array[bad][:5].tolist(), "finite values",
                      why=f"{int(bad.sum())} entries are not, at [row, column] {where}")
    return array


def _labels(values: Any, name: str, n_rows: int, features_name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise invalid(name, array, "a 1-D array of binary labels")
    if len(array) != n_rows:
        raise invalid(name, array, f"{n_rows} labels (one per row of {features_name})", why=f"got {len(array)}")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise invalid(name, array, "binary labels in {0, 1} or bool")
    values_seen = np.unique(array)
    not_binary = ~np.isin(array, [0, 1])
    if not_binary.any():
        raise invalid(name, np.unique(array[not_binary])[:5].tolist(), "binary labels in {0, 1} or bool",
                      why=f"{int(not_binary.sum())} labels are not, at rows {np.flatnonzero(not_binary)[:5].tolist()}")
    labels = array.astype(np.int64)
    if values_seen.size < 2:
        raise invalid(name, array, "both classes 0 and 1",
                      why=f"only label {int(labels[0])} in {len(labels)} samples")
    return labels


def linear_probe_auc(train_features: Any, train_labels: Any, test_features: Any, test_labels: Any,
                     C: float = 1.0) -> float:
    """Held-out ROC AUC of a logistic-regression probe fitted on standardised training features.

    The scaler and the L2-penalised logistic regression (lbfgs, ``max_iter=2000``, inverse
    regularisation strength ``C``) see the training set only; the AUC ranks the test items by the
    probe's decision function (the logit, which ranks as the probability does but does not round
    to ties at 0 or 1). Deterministic: lbfgs has no randomness.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train = _features(train_features, "train_features")
    x_test = _features(test_features, "test_features")
    if x_train.shape[1] != x_test.shape[1]:
        raise invalid("test_features", x_test, f"{x_train.shape[1]} columns like train_features",
                      why=f"got {x_test.shape[1]}")
    y_train = _labels(train_labels, "train_labels", len(x_train), "train_features")
    y_test = _labels(test_labels, "test_labels", len(x_test), "test_features")
    if isinstance(C, bool) or not isinstance(C, (int, float, np.integer, np.floating)) or not (np.isfinite(C) and C > 0):
        raise invalid("C", C, "a finite number in (0, inf)")

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=float(C), solver="lbfgs", max_iter=2000))
    probe.fit(x_train, y_train)
    return float(roc_auc_score(y_test, probe.decision_function(x_test)))


__all__ = ["bag_of_words_features", "linear_probe_auc"]
