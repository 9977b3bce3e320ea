"""Held-out metrics every classifier card reports, including SGCC's MAP@N."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score


def map_at_k(y_true, score, k: int = 100) -> float:
    """MAP@k as in the SGCC papers (Zheng et al. 2018): mean of the precision at each
    true positive's rank within the k highest scores (0 if none is there)."""
    y_true = np.asarray(y_true)
    top = np.argsort(-np.asarray(score), kind="stable")[:k]
    hits = np.flatnonzero(y_true[top] == 1)
    if len(hits) == 0:
        return 0.0
    return float(np.mean((np.arange(len(hits)) + 1) / (hits + 1)))


def binary_report(y_true, score, threshold: float) -> dict:
    """AUC, average precision, MAP@100 and precision/recall/F1 at the operating threshold."""
    y_true = np.asarray(y_true).astype(int)
    score = np.asarray(score, dtype=float)
    predicted = (score >= threshold).astype(int)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, predicted, average="binary", zero_division=0)
    return {
        "n": int(len(y_true)),
        "positive_rate": round(float(y_true.mean()), 4),
        "auc": round(float(roc_auc_score(y_true, score)), 4),
        "average_precision": round(float(average_precision_score(y_true, score)), 4),
        "map_at_100": round(map_at_k(y_true, score, 100), 4),
        "threshold": round(float(threshold), 4),
        "precision": round(float(precision), 4),
        "recall": round(float(recall), 4),
        "f1": round(float(f1), 4),
    }
