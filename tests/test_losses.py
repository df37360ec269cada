"""IFM loss and methods: gradients, critic forms and the method contract."""

import pytest
import torch

from ifm_core.config import RunConfig
from ifm_core.critics import GlobalCritic, LocalCritic
from ifm_core.losses import InformationFlowLoss, spectral_decoupling
from ifm_core.methods import InformationFlowMethod, build_method
from ifm_core.models import TAP_NAMES, SmallCNN


def _batch(size=28, count=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(count, 1, size, size, generator=generator)
    labels = torch.randint(0, 10, (count,), generator=generator)
    return images, labels


def test_tap_names_match_forward():
    _, taps = SmallCNN()(torch.zeros(2, 1, 28, 28))
    assert tuple(taps) == TAP_NAMES


@pytest.mark.parametrize("size", [28, 40])
def test_logits_shape(size):
    logits, _ = SmallCNN()(torch.zeros(3, 1, size, size))
    assert logits.shape == (3, 10)


@pytest.mark.parametrize("critic", ["global", "local"])
@pytest.mark.parametrize("estimator", ["jsd", "dv", "infonce"])
def test_gradients_reach_network_and_critics(critic, estimator):
    torch.manual_seed(0)
    method = InformationFlowMethod(SmallCNN(), 28, weight=1.0, estimator=estimator, critic=critic)
    images, labels = _batch()
    method.losses(images, labels)["ifm"].backward()

    for name, parameter in method.model.named_parameters():
        if name.startswith("head"):
            continue  # the logits layer lies after the last tap
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    for name, parameter in method.ifm.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_critic_per_adjacent_pair():
    method = InformationFlowMethod(SmallCNN(), 28, weight=1.0)
    assert list(method.ifm.critics) == ["conv1->conv2", "conv2->conv3", "conv3->fc"]


def test_include_input_adds_pair():
    method = InformationFlowMethod(SmallCNN(), 28, weight=1.0, include_input=True)
    assert list(method.ifm.critics)[0] == "input->conv1"


def test_global_critic_scores_square():
    critic = GlobalCritic((16, 14, 14), (32, 7, 7))
    scores = critic(torch.randn(5, 16, 14, 14), torch.randn(5, 32, 7, 7))
    assert scores.shape == (5, 5)


def test_local_critic_scores_per_position():
    critic = LocalCritic((16, 14, 14), (128,))
    scores = critic(torch.randn(5, 16, 14, 14), torch.randn(5, 128))
    assert scores.shape == (14 * 14, 5, 5)


def test_local_critic_rejects_vector_lower():
    with pytest.raises(ValueError, match="spatial lower tap"):
        LocalCritic((128,), (10,))


def test_ifm_loss_is_negative_mean_bound():
    torch.manual_seed(0)
    model = SmallCNN()
    loss_fn = InformationFlowLoss(model.tap_shapes(28))
    _, taps = model(_batch()[0])
    loss, bounds = loss_fn(taps)
    assert loss.item() == pytest.approx(-sum(b.item() for b in bounds.values()) / len(bounds))


def test_ifm_needs_two_taps():
    with pytest.raises(ValueError, match="at least two taps"):
        InformationFlowLoss({"fc": (128,)})


def test_ifm_batch_of_one_raises():
    method = InformationFlowMethod(SmallCNN(), 28, weight=1.0)
    images, labels = _batch(count=1)
    with pytest.raises(ValueError, match="no negative pairs"):
        method.losses(images, labels)


@pytest.mark.parametrize("method_name", ["ce", "ifm", "sd", "oracle", "cue_only"])
def test_method_contract(method_name):
    method = build_method(RunConfig(method=method_name), image_size=28)
    images, labels = _batch()
    losses = method.losses(images, labels)
    assert "total" in losses
    assert all(value.dim() == 0 for value in losses.values())
    assert method.predict(images).shape == (8, 10)


def test_sd_total_adds_weighted_penalty():
    method = build_method(RunConfig(method="sd", sd_weight=0.5), image_size=28)
    losses = method.losses(*_batch())
    assert losses["total"].item() == pytest.approx(losses["ce"].item() + 0.5 * losses["sd"].item(), rel=1e-6)


def test_spectral_decoupling_value():
    assert spectral_decoupling(torch.tensor([[1.0, -3.0]])).item() == pytest.approx(5.0)


def test_same_seed_same_initial_network():
    torch.manual_seed(3)
    ce = build_method(RunConfig(method="ce"), 28)
    torch.manual_seed(3)
    ifm = build_method(RunConfig(method="ifm"), 28)
    for (name, a), (_, b) in zip(ce.model.state_dict().items(), ifm.model.state_dict().items()):
        assert torch.equal(a, b), name
