"""Unlearning attribution: closed forms on a linear model, vectorised == loop, determinism."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import params_of

from stages.lib.attribution import (
    FlatModel,
    UnlearnParams,
    attribute,
    energy_mse_per_example,
    loss_scores,
    mse_per_example,
    scores_from_delta,
)
from stages.lib.detection import auroc, average_precision, detection_report
from stages.lib.unmix import ModelParams, build_model


def _linear_songs(n: int, k: int, d: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(k, d, generator=g, dtype=torch.float64),
             torch.randn(k, 1, generator=g, dtype=torch.float64)) for _ in range(n)]


def _numpy_reference(w: np.ndarray, train, ref, alpha: float, lam: float, steps: int,
                     naive: bool = False):
    """Hand-derived Fisher, unlearning update and ΔL for L(w) = mean_k (w·x_k − y_k)²; ``naive``:
    the step without the Fisher, ``w + c ∇L`` with ``c`` the mean of the Fisher step's scales."""
    def loss(w, x, y):
        return float(np.mean((x @ w - y[:, 0]) ** 2))

    def grad(w, x, y):
        return 2.0 / len(x) * ((x @ w - y[:, 0]) @ x)

    tr = [(x.numpy(), y.numpy()) for x, y in train]
    fisher = np.mean([grad(w, x, y) ** 2 for x, y in tr], axis=0)
    base = np.array([loss(w, x, y) for x, y in tr])
    delta = np.empty((len(tr), len(ref)))
    for j, (x, y) in enumerate(ref):
        wj = w.copy()
        for _ in range(steps):
            scale = alpha / len(tr) / (fisher + lam)
            scale = np.full_like(scale, scale.mean()) if naive else scale
            wj = wj + scale * grad(wj, x.numpy(), y.numpy())
        delta[:, j] = [loss(wj, xi, yi) - b for (xi, yi), b in zip(tr, base, strict=True)]
    return fisher, base, delta


@pytest.mark.parametrize("steps", [1, 3])
def test_linear_model_matches_hand_derivation(steps: int) -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 1, bias=False).double()
    train, ref = _linear_songs(6, 4, 5, 1), _linear_songs(3, 4, 5, 2)
    params = params_of(UnlearnParams, "attribute.unlearn", alpha=0.5, steps=steps, damping=0.01,
                       damping_relative=False, mode="exact")
    result = attribute(model, train, ref, params)
    w = model.weight.detach().numpy()[0]
    fisher, base, delta = _numpy_reference(w, train, ref, 0.5, 0.01, steps)
    np.testing.assert_allclose(result.baseline, base, rtol=1e-10)
    np.testing.assert_allclose(result.delta, delta, rtol=1e-8, atol=1e-12)
    assert result.fisher_mean == pytest.approx(fisher.mean(), rel=1e-10)


@pytest.mark.parametrize("mode", ["exact", "linear"])
def test_naive_unlearning_drops_the_fisher(mode: str) -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 1, bias=False).double()
    train, ref = _linear_songs(6, 4, 5, 1), _linear_songs(3, 4, 5, 2)
    params = params_of(UnlearnParams, "attribute.unlearn", alpha=0.05, damping=0.01,
                       damping_relative=False, mode=mode)
    both, alone = attribute(model, train, ref, params, naive=True), attribute(model, train, ref, params)
    assert np.array_equal(both.delta, alone.delta) and alone.delta_naive is None
    w = model.weight.detach().numpy()[0]
    if mode == "exact":
        _, _, expected = _numpy_reference(w, train, ref, 0.05, 0.01, 1, naive=True)
    else:  # TracIn's gradient similarity at the final checkpoint, times the mean Fisher step

        def grad(x, y):
            return 2.0 / len(x) * ((x @ w - y[:, 0]) @ x)

        g_train = np.stack([grad(x.numpy(), y.numpy()) for x, y in train])
        g_ref = np.stack([grad(x.numpy(), y.numpy()) for x, y in ref])
        fisher = np.mean(g_train ** 2, axis=0)
        expected = np.mean(0.05 / len(train) / (fisher + 0.01)) * g_train @ g_ref.T
    np.testing.assert_allclose(both.delta_naive, expected, rtol=1e-8, atol=1e-14)
    assert not np.allclose(both.delta_naive, both.delta)  # the Fisher changes the step


def test_loss_scores_rank_high_losses_last() -> None:
    baseline = {"vocals": np.array([1.0, 2.0, 3.0]), "bass": np.array([30.0, 10.0, 20.0])}
    unified, per_target = loss_scores(baseline)
    np.testing.assert_array_equal(per_target["vocals"], [-1.0, -2.0, -3.0])
    z = np.sqrt(1.5)  # z-scores of (1, 2, 3) and (30, 10, 20): each target one equal vote
    np.testing.assert_allclose(unified, [(z + -z) / 2, (0 + z) / 2, (-z + 0) / 2])


def test_linear_mode_is_the_first_order_expansion() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 1, bias=False).double()
    train, ref = _linear_songs(6, 4, 5, 1), _linear_songs(3, 4, 5, 2)
    w = model.weight.detach().numpy()[0]
    fisher, _, _ = _numpy_reference(w, train, ref, 1.0, 0.01, 1)

    def grad(x, y):
        return 2.0 / len(x) * ((x @ w - y[:, 0]) @ x)

    g_train = np.stack([grad(x.numpy(), y.numpy()) for x, y in train])
    g_ref = np.stack([grad(x.numpy(), y.numpy()) for x, y in ref])
    expected = 0.5 / len(train) * g_train @ (g_ref / (fisher + 0.01)).T
    params = params_of(UnlearnParams, "attribute.unlearn",
        alpha=0.5, damping=0.01, damping_relative=False, mode="linear")
    np.testing.assert_allclose(attribute(model, train, ref, params).delta, expected, rtol=1e-10)
    # and it converges to the exact mode as alpha -> 0 (relative error shrinks linearly)
    errors = []
    for alpha in (1e-2, 1e-3):
        exact = attribute(model, train, ref, params_of(
            UnlearnParams, "attribute.unlearn", alpha=alpha, damping=0.01, damping_relative=False,
            mode="exact")).delta
        linear = attribute(model, train, ref, params_of(UnlearnParams, "attribute.unlearn",
            alpha=alpha, damping=0.01,
                                                            damping_relative=False,
                                                            mode="linear")).delta
        errors.append(np.abs(exact - linear).max() / np.abs(linear).max())
    assert errors[1] < errors[0] / 5


def test_ascent_increases_the_unlearned_songs_loss() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 1, bias=False).double()
    songs = _linear_songs(6, 4, 5, 3)
    result = attribute(model, songs, songs[:2], params_of(UnlearnParams, "attribute.unlearn",
        alpha=0.1, damping=0.1,
                                                         mode="exact"))
    assert result.delta[0, 0] > 0 and result.delta[1, 1] > 0


def _tiny_unmix_songs(n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(2, 2, 65, 9, generator=g), torch.rand(2, 2, 65, 9, generator=g))
            for _ in range(n)]


def _loop_reference(model, train, ref, params):
    """Plain loop over unlearned model *copies*, one song at a time (independent of FlatModel)."""
    model = model.eval()
    params_list = [p for p in model.parameters()]

    def loss(m, x, y):
        return ((m(x) - y) ** 2).mean()

    grads = []
    for x, y in train:
        grads.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(
            loss(model, x, y), params_list)]))
    fisher = torch.stack(grads).pow(2).mean(0)
    lam = params.damping * float(fisher.mean())
    with torch.no_grad():
        base = torch.stack([loss(model, x, y) for x, y in train])
    delta = np.empty((len(train), len(ref)))
    for j, (x, y) in enumerate(ref):
        copy_j = copy.deepcopy(model)
        g = torch.autograd.grad(loss(copy_j, x, y), list(copy_j.parameters()))
        flat_g = torch.cat([t.reshape(-1) for t in g])
        new = torch.nn.utils.parameters_to_vector(copy_j.parameters()).detach() + \
            params.alpha / len(train) / (fisher + lam) * flat_g
        torch.nn.utils.vector_to_parameters(new, copy_j.parameters())
        with torch.no_grad():
            delta[:, j] = [(loss(copy_j, xi, yi) - b).item()
                           for (xi, yi), b in zip(train, base, strict=True)]
    return delta


def test_vectorised_equals_loop_over_model_copies() -> None:
    torch.manual_seed(0)
    model = build_model(params_of(ModelParams, "train.model",
        n_fft=128, hop=64, hidden_size=8, bandwidth_hz=3000.0), 8000)
    train, ref = _tiny_unmix_songs(5, 1), _tiny_unmix_songs(3, 2)
    params = params_of(UnlearnParams, "attribute.unlearn", alpha=5.0, damping=0.1, mode="exact")
    fast = attribute(model, train, ref, params)
    slow = _loop_reference(model, train, ref, params)
    np.testing.assert_allclose(fast.delta, slow, rtol=1e-4, atol=1e-7)
    again = attribute(model, train, ref, params)
    assert np.array_equal(fast.delta, again.delta)  # deterministic


def test_include_selects_parameter_groups() -> None:
    model = build_model(params_of(ModelParams, "train.model",
        n_fft=128, hop=64, hidden_size=8, bandwidth_hz=3000.0), 8000)
    fm = FlatModel(model, ("fc3", "bn3"))
    assert all(n.startswith(("fc3", "bn3")) for n in fm.names)
    with pytest.raises(ValueError, match="selects no parameter"):
        FlatModel(model, ("nonexistent",))


def test_scores_unified_is_mean_over_targets_and_refs() -> None:
    deltas = {"vocals": np.array([[1.0, 3.0], [0.0, 0.0]]), "bass": np.array([[2.0, 2.0], [4.0, 0.0]])}
    unified, per_target = scores_from_delta(deltas)
    np.testing.assert_allclose(unified, [2.0, 1.0])
    np.testing.assert_allclose(per_target["bass"], [2.0, 2.0])


def test_zscore_reduction_gives_every_reference_an_equal_vote() -> None:
    # reference 0 has 100x the scale of reference 1 and the opposite ordering of the songs
    delta = np.array([[10.0, 0.1], [0.0, 0.3], [5.0, 0.2]])
    mean, _ = scores_from_delta({"vocals": delta})
    np.testing.assert_allclose(mean, [5.05, 0.15, 2.6])  # the big reference decides alone
    zscored, per_target = scores_from_delta({"vocals": delta}, "zscore")
    # column z-scores: [1.22, -1.22, 0] and [-1.22, 1.22, 0] -> the two votes cancel
    np.testing.assert_allclose(zscored, [0.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(per_target["vocals"], zscored)
    constant = scores_from_delta({"vocals": np.ones((3, 2))}, "zscore")[0]
    np.testing.assert_array_equal(constant, np.zeros(3))  # no division by zero
    with pytest.raises(ValueError, match="attribute.reduction"):
        scores_from_delta({"vocals": delta}, "max")  # type: ignore[arg-type]


def test_auroc_and_ap_against_brute_force() -> None:
    rng = np.random.default_rng(0)
    scores = rng.standard_normal(30).round(1)  # rounding creates ties
    corrupted = rng.random(30) < 0.4
    pairs = [(c, k) for c in scores[corrupted] for k in scores[~corrupted]]
    brute = np.mean([1.0 if c < k else 0.5 if c == k else 0.0 for c, k in pairs])
    assert auroc(scores, corrupted) == pytest.approx(brute)
    perfect = np.array([0.1, 0.2, 0.9, 1.0])
    assert auroc(perfect, np.array([True, True, False, False])) == 1.0
    assert average_precision(perfect, np.array([True, True, False, False])) == 1.0
    assert auroc(perfect, np.zeros(4, bool)) is None


def test_detection_report_per_kind() -> None:
    scores = {"a": 0.0, "b": 0.1, "c": 1.0, "d": 0.9}
    truth = {"a": "bleeding", "b": "label_noise", "c": "clean", "d": "clean"}
    report = detection_report(scores, truth)
    assert report["any"]["auroc"] == 1.0 and report["bleeding"]["auroc"] == 1.0
    assert set(report) == {"any", "bleeding", "label_noise"}


def test_energy_loss_ignores_a_common_level_and_survives_a_silent_target() -> None:
    g = torch.Generator().manual_seed(3)
    out, tgt, mix = (torch.rand(3, 2, 5, 7, generator=g) for _ in range(3))
    base = energy_mse_per_example(out, tgt, mix)
    torch.testing.assert_close(energy_mse_per_example(4 * out, 4 * tgt, 4 * mix), base)
    silent = energy_mse_per_example(out, torch.zeros_like(tgt), mix)
    assert torch.isfinite(silent).all()
    torch.testing.assert_close(silent, mse_per_example(out, 0 * tgt) / (0.01 * mix.pow(2).mean((1, 2, 3))))


@pytest.mark.parametrize("loss", [mse_per_example, energy_mse_per_example])
def test_a_louder_song_weighs_more_only_under_the_plain_mse(loss) -> None:
    """A linear model's output scales with its input: a training song played 10x louder has a
    100x larger MSE (and gradient, which also dominates the Fisher); the energy loss sees the
    same song, so every score stays the same."""
    model = torch.nn.Linear(5, 1, bias=False).double()
    train, ref = _linear_songs(6, 4, 5, 1), _linear_songs(3, 4, 5, 2)
    params = params_of(UnlearnParams, "attribute.unlearn", alpha=0.1, damping=0.01,
                       damping_relative=False, mode="linear")
    quiet = attribute(model, train, ref, params, loss=loss)
    loud = attribute(model, [(10 * x, 10 * y) for x, y in train[:1]] + train[1:], ref, params,
                     loss=loss)
    if loss is energy_mse_per_example:
        np.testing.assert_allclose(loud.baseline, quiet.baseline, rtol=1e-9)
        np.testing.assert_allclose(loud.delta, quiet.delta, rtol=1e-9)
    else:
        np.testing.assert_allclose(loud.baseline[0], 100 * quiet.baseline[0], rtol=1e-9)
        assert not np.allclose(loud.delta, quiet.delta, rtol=0.1)


def test_mse_per_example_shape() -> None:
    out = mse_per_example(torch.ones(3, 2, 4), torch.zeros(3, 2, 4))
    assert out.shape == (3,) and torch.all(out == 1)


def test_an_unknown_attribution_loss_is_refused_at_load_time() -> None:
    from stages.lib.attribution_inputs import AttributeParams

    with pytest.raises(ValueError, match=r"attribute\.loss: 'l1' is not one of \['mse', 'energy'\]"):
        params_of(AttributeParams, "attribute", loss="l1")
    assert params_of(AttributeParams, "attribute", loss="energy").loss == "energy"
