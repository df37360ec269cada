"""RunConfig: validation, papermill string coercion and run naming."""

import pytest

from ifm_core.config import ConfigError, RunConfig

BAD_VALUES = [
    ("ifm_weight", -1, "ifm_weight"),
    ("ifm_weight", float("inf"), "ifm_weight"),
    ("ifm_weight", float("nan"), "ifm_weight"),
    ("ifm_weight", "0.2", "ifm_weight"),
    ("sd_weight", -0.5, "sd_weight"),
    ("cue_type", "stripes", "cue_type"),
    ("method", "mixup", "method"),
    ("estimator", "mine", "estimator"),
    ("critic", "bilinear", "critic"),
    ("precision", "fp16", "precision"),
    ("device", "gpu", "device"),
    ("device", "cpu:1", "device"),
    ("train_cue_agreement", 1.5, "train_cue_agreement"),
    ("train_cue_agreement", -0.1, "train_cue_agreement"),
    ("test_agreements", [0.1, 2.0], "test_agreements"),
    ("test_agreements", [], "test_agreements"),
    ("test_agreements", "[0, 0.1]", "test_agreements"),
    ("epochs", 0, "epochs"),
    ("epochs", 2.5, "epochs"),
    ("epochs", "[1, 2]", "epochs"),
    ("epochs", True, "epochs"),
    ("batch_size", -8, "batch_size"),
    ("batch_size", 30_000, "batch_size"),
    ("learning_rate", 0, "learning_rate"),
    ("learning_rate", "fast", "learning_rate"),
    ("train_size", 1, "train_size"),
    ("train_size", 70_000, "train_size"),
    ("val_size", 0, "val_size"),
    ("val_size", 60_000, "val_size"),
    ("test_size", 20_000, "test_size"),
    ("seed", -1, "seed"),
    ("data_seed", "zero", "data_seed"),
    ("include_input", "maybe", "include_input"),
    ("include_input", 2, "include_input"),
]


@pytest.mark.parametrize(("name", "value", "named"), BAD_VALUES)
def test_bad_value_rejected(name, value, named):
    with pytest.raises(ConfigError) as raised:
        RunConfig(**{name: value})
    assert named in str(raised.value)


def test_ifm_batch_of_one_rejected():
    with pytest.raises(ConfigError, match="batch_size=1"):
        RunConfig(method="ifm", batch_size=1)


def test_ce_batch_of_one_allowed():
    assert RunConfig(method="ce", batch_size=1).batch_size == 1


@pytest.mark.parametrize(("text", "expected"), [("false", False), ("False", False), ("true", True), ("no", False)])
def test_bool_strings_coerced(text, expected):
    assert RunConfig(include_input=text).include_input is expected


@pytest.mark.parametrize("text", ["None", "none", "null"])
def test_none_strings_coerced(text):
    assert RunConfig(train_size=text).train_size is None


def test_integral_float_accepted_for_int():
    assert RunConfig(epochs=2.0).epochs == 2


def test_int_accepted_for_float():
    config = RunConfig(ifm_weight=1)
    assert isinstance(config.ifm_weight, float)


def test_single_agreement_becomes_tuple():
    assert RunConfig(test_agreements=0.5).test_agreements == (0.5,)


def test_agreements_sorted_unique():
    assert RunConfig(test_agreements=[1, 0.1, 0.1, 0]).test_agreements == (0.0, 0.1, 1.0)


def test_from_parameters_ignores_extras():
    config = RunConfig.from_parameters(ifm_weight=0.2, profile="quick")
    assert config.ifm_weight == 0.2


def test_fingerprint_ignores_device():
    assert RunConfig(device="cpu").fingerprint() == RunConfig(device="auto").fingerprint()


def test_fingerprint_tracks_weight():
    assert RunConfig(ifm_weight=0.1).fingerprint() != RunConfig(ifm_weight=0.2).fingerprint()


def test_run_name_shows_settings():
    name = RunConfig(method="ifm", ifm_weight=0.3, cue_type="texture", seed=4).run_name()
    assert name.startswith("ifm-w0.3-texture-p1-s4-d0-")


def test_message_names_fix():
    with pytest.raises(ConfigError, match=r"train_size=70000 .* 2 to 55000"):
        RunConfig(train_size=70_000)
