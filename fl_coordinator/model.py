"""The federated model: a small MLP (or logistic regression with hidden=()) trained by SGD.

scikit-learn compatible (fit / partial_fit / predict / predict_proba,
get_params) and exposing its parameters as one flat float vector, which is
what partners encrypt and the coordinator averages. Binary only: theft or not.
Training is deterministic for a given `random_state`, so the HE and plaintext
FedAvg runs can be compared weight for weight.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from fl_coordinator import dp


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class FedMLPClassifier(ClassifierMixin, BaseEstimator):
    """Binary MLP with tanh hidden layers and a logistic output, trained by minibatch SGD.

    `fit` starts from fresh (or `set_weights`-given) weights; `partial_fit`
    continues from the current ones for `epochs` passes — one local round.
    """

    def __init__(self, hidden=(16,), lr=0.05, epochs=1, batch_size=64, l2=1e-4,
                 class_weight="balanced", random_state=0, prox_mu=0.0, dp_clip=0.0, dp_noise=0.0):
        self.hidden = hidden
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.l2 = l2
        self.class_weight = class_weight
        self.random_state = random_state
        #: FedProx (Li et al., 2020): mu/2 * ||w - w_round_start||^2 added to the local loss, so a
        #: partner whose data differ from the others' drifts less far from the global model
        self.prox_mu = prox_mu
        #: DP-SGD (customer-level privacy, fl_coordinator.dp): each example's gradient clipped to
        #: L2 norm dp_clip, N(0, (dp_noise * dp_clip)^2) added to their sum, batches Poisson-sampled
        #: at rate batch_size / n; off when dp_clip is 0
        self.dp_clip = dp_clip
        self.dp_noise = dp_noise

    # -- parameters as one vector ------------------------------------------------
    def _sizes(self) -> list[int]:
        return [self.n_features_in_, *self.hidden, 1]

    def init_weights(self, n_features: int) -> "FedMLPClassifier":
        """Glorot-uniform weights, zero biases, seeded by random_state."""
        self.n_features_in_ = int(n_features)
        self.classes_ = np.array([0, 1])
        rng = np.random.default_rng(self.random_state)
        self.coefs_, self.intercepts_ = [], []
        sizes = self._sizes()
        for a, b in zip(sizes[:-1], sizes[1:]):
            lim = np.sqrt(6.0 / (a + b))
            self.coefs_.append(rng.uniform(-lim, lim, size=(a, b)))
            self.intercepts_.append(np.zeros(b))
        return self

    @property
    def n_params(self) -> int:
        sizes = self._sizes()
        return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))

    def get_weights(self) -> np.ndarray:
        check_is_fitted(self, "coefs_")
        return np.concatenate([p.ravel() for pair in zip(self.coefs_, self.intercepts_) for p in pair])

    def set_weights(self, flat: np.ndarray, n_features: int | None = None) -> "FedMLPClassifier":
        if n_features is not None:
            self.init_weights(n_features)
        flat = np.asarray(flat, dtype=np.float64).ravel()
        if flat.size != self.n_params:
            raise ValueError(f"weight vector has {flat.size} values, the model needs {self.n_params}")
        pos = 0
        for i, (w, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            self.coefs_[i] = flat[pos:pos + w.size].reshape(w.shape).copy()
            pos += w.size
            self.intercepts_[i] = flat[pos:pos + b.size].copy()
            pos += b.size
        return self

    def architecture(self) -> dict:
        return {"kind": "mlp", "n_features": int(self.n_features_in_), "hidden": list(self.hidden)}

    # -- training ------------------------------------------------------------------
    def _forward(self, X):
        acts = [X]
        for i, (w, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            z = acts[-1] @ w + b
            acts.append(np.tanh(z) if i < len(self.coefs_) - 1 else z)
        return acts

    def _sample_weights(self, y: np.ndarray) -> np.ndarray:
        if self.class_weight != "balanced":
            return np.ones(len(y))
        n, pos = len(y), max(int(y.sum()), 1)
        neg = max(n - int(y.sum()), 1)
        return np.where(y == 1, n / (2.0 * pos), n / (2.0 * neg))

    def partial_fit(self, X, y, classes=None):
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y).astype(np.float64).ravel()
        if not hasattr(self, "coefs_"):
            self.init_weights(X.shape[1])
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, the model expects {self.n_features_in_}")
        sw = self._sample_weights(y)
        rng = np.random.default_rng(self.random_state)
        anchor = [w.copy() for w in self.coefs_], [b.copy() for b in self.intercepts_]
        for idx in self._batches(len(y), rng):
            acts = self._forward(X[idx])
            delta = ((_sigmoid(acts[-1][:, 0]) - y[idx]) * sw[idx])[:, None]
            grads = self._private_gradients(acts, delta, len(y), rng) if self.dp_clip else \
                self._gradients(acts, delta / max(len(idx), 1))
            for i, (gw, gb) in enumerate(grads):
                gw = gw + self.l2 * self.coefs_[i]
                if self.prox_mu:
                    gw = gw + self.prox_mu * (self.coefs_[i] - anchor[0][i])
                    gb = gb + self.prox_mu * (self.intercepts_[i] - anchor[1][i])
                self.coefs_[i] -= self.lr * gw
                self.intercepts_[i] -= self.lr * gb
        return self

    def _batches(self, n: int, rng: np.random.Generator):
        """Shuffled minibatches, `epochs` passes; under DP-SGD, Poisson samples at rate
        batch_size / n for `epochs` expected passes (what the accountant assumes)."""
        if self.dp_clip:
            q = dp.sample_rate(n, self.batch_size)
            for _ in range(dp.steps_per_round(n, self.batch_size, self.epochs)):
                yield np.flatnonzero(rng.random(n) < q)
            return
        for _ in range(self.epochs):
            order = rng.permutation(n)
            for s in range(0, n, self.batch_size):
                yield order[s:s + self.batch_size]

    def _gradients(self, acts: list, delta: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Backpropagation of the output errors `delta` (summed over the batch), per layer."""
        out = [None] * len(self.coefs_)
        for i in range(len(self.coefs_) - 1, -1, -1):
            out[i] = (acts[i].T @ delta, delta.sum(axis=0))
            if i:
                delta = (delta @ self.coefs_[i].T) * (1.0 - acts[i] ** 2)
        return out

    def _private_gradients(self, acts: list, delta: np.ndarray, n: int,
                           rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
        """DP-SGD: every example's gradient clipped to dp_clip, their sum noised, divided by
        the expected batch size q * n (so an empty sample is a step of noise alone)."""
        per = [None] * len(self.coefs_)
        for i in range(len(self.coefs_) - 1, -1, -1):
            per[i] = (acts[i][:, :, None] * delta[:, None, :], delta)  # (b, in, out), (b, out)
            if i:
                delta = (delta @ self.coefs_[i].T) * (1.0 - acts[i] ** 2)
        norms = np.sqrt(sum((gw ** 2).sum(axis=(1, 2)) + (gb ** 2).sum(axis=1) for gw, gb in per))
        scale = np.minimum(1.0, self.dp_clip / np.maximum(norms, 1e-12))
        expected = dp.sample_rate(n, self.batch_size) * n
        sigma = self.dp_noise * self.dp_clip
        return [((np.tensordot(scale, gw, axes=1) + rng.normal(0, sigma, gw.shape[1:])) / expected,
                 (scale @ gb + rng.normal(0, sigma, gb.shape[1:])) / expected) for gw, gb in per]

    def fit(self, X, y):
        X = np.asarray(X, dtype=np.float64)
        self.init_weights(X.shape[1])
        return self.partial_fit(X, y)

    # -- prediction -----------------------------------------------------------------
    def decision_function(self, X) -> np.ndarray:
        check_is_fitted(self, "coefs_")
        return self._forward(np.asarray(X, dtype=np.float64))[-1][:, 0]

    def predict_proba(self, X) -> np.ndarray:
        p = _sigmoid(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.decision_function(X) > 0).astype(int)


def from_architecture(arch: dict, weights: np.ndarray | None = None, **params) -> FedMLPClassifier:
    """Build the model a task describes, optionally loading its flat weights."""
    if arch.get("kind") != "mlp":
        raise ValueError(f"unknown model kind {arch.get('kind')!r}; this zone trains 'mlp'")
    model = FedMLPClassifier(hidden=tuple(arch.get("hidden", ())), **params)
    model.init_weights(int(arch["n_features"]))
    return model if weights is None else model.set_weights(weights)
