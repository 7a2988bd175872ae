"""The specialist baseline: a 4-class instrument classifier on frame embeddings (paper, Baseline 3).

Linear(D→256) → ReLU → Dropout(0.5) → Linear(256→4), trained on the frames of the clean
reference songs' stems (label = stem). A training song's stem is scored by the mean, over its
frames, of the predicted probability of its own label; low = suspicious. Inputs are standardised
with the training frames' mean and std (so signal-level embeddings such as log-mels train too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .params import TARGETS, check, check_range
from .scores import ScoreTable


@dataclass(frozen=True)
class MLPParams:
    """``mlp_scores`` section."""

    hidden: int
    dropout: float
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    seed: int

    def __post_init__(self) -> None:
        check_range(self.hidden, 1, 65_536, "mlp_scores.hidden")
        check(0.0 <= self.dropout < 1.0, "mlp_scores.dropout", "must be in [0, 1)")
        check_range(self.epochs, 1, 100_000, "mlp_scores.epochs")
        check_range(self.batch_size, 1, 1_000_000, "mlp_scores.batch_size")
        check(self.lr > 0, "mlp_scores.lr", "must be > 0")


class StemClassifier(torch.nn.Module):
    """Standardise → Linear → ReLU → Dropout → Linear, over ``len(TARGETS)`` classes."""

    def __init__(self, dim: int, params: MLPParams, mean: np.ndarray, std: np.ndarray):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        self.net = torch.nn.Sequential(
            torch.nn.Linear(dim, params.hidden), torch.nn.ReLU(), torch.nn.Dropout(params.dropout),
            torch.nn.Linear(params.hidden, len(TARGETS)))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Logits ``[T, 4]`` for frames ``[T, D]``."""
        return self.net((frames - self.mean) / self.std)


def train_classifier(frames: np.ndarray, labels: np.ndarray, params: MLPParams) -> StemClassifier:
    """Train on ``frames [n, D]`` with integer ``labels [n]`` (index into TARGETS)."""
    torch.manual_seed(params.seed)
    rng = np.random.default_rng(params.seed)
    x = torch.as_tensor(frames, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.long)
    std = np.maximum(frames.std(axis=0), 1e-6)
    model = StemClassifier(frames.shape[1], params, frames.mean(axis=0), std)
    optimizer = torch.optim.Adam(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    model.train()
    for _ in range(params.epochs):
        order = torch.as_tensor(rng.permutation(len(x)))
        for start in range(0, len(x), params.batch_size):
            idx = order[start:start + params.batch_size]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def class_probabilities(model: StemClassifier, frames: np.ndarray) -> np.ndarray:
    """Mean class probabilities over frames ``[4]``."""
    with torch.no_grad():
        probs = torch.softmax(model(torch.as_tensor(frames, dtype=torch.float32)), dim=-1)
    return probs.mean(0).numpy()


def frame_accuracy(model: StemClassifier, frames: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of frames whose arg-max class is their label."""
    with torch.no_grad():
        pred = model(torch.as_tensor(frames, dtype=torch.float32)).argmax(-1).numpy()
    return float((pred == labels).mean())


def labelled(store: dict[str, dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """All stem frames of a store with their stem index as label."""
    frames, labels = [], []
    for song in sorted(store):
        for i, target in enumerate(TARGETS):
            frames.append(store[song][target])
            labels.append(np.full(len(store[song][target]), i))
    return np.concatenate(frames), np.concatenate(labels)


def mlp_score_table(model: StemClassifier, store: dict[str, dict[str, np.ndarray]]) -> ScoreTable:
    """Score of a song's stem = mean probability that its frames are that stem (the label it
    carries); unified = mean over the four stems."""
    songs = sorted(store)
    per_target = {t: np.array([class_probabilities(model, store[s][t])[i] for s in songs])
                  for i, t in enumerate(TARGETS)}
    return ScoreTable(songs, per_target, np.mean([per_target[t] for t in TARGETS], axis=0))
