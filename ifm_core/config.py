"""The configuration of one training run, validated when it is built."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from .critics import CRITICS
from .data import CUE_TYPES
from .estimators import ESTIMATORS

MNIST_TRAIN_DIGITS = 60_000
MNIST_TEST_DIGITS = 10_000

METHODS = ("ce", "ifm", "sd", "oracle", "cue_only")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16")

_TRUE_STRINGS = {"true", "yes", "1", "on"}
_FALSE_STRINGS = {"false", "no", "0", "off"}
_NONE_STRINGS = {"none", "null", ""}


class ConfigError(ValueError):
    """An invalid configuration value; the message names the parameter and the fix."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one run; saved with it and hashed to name its folder."""

    method: str = "ifm"  # ce, ifm, sd, oracle or cue_only
    ifm_weight: float = 0.3  # weight of the IFM term; used by method ifm
    sd_weight: float = 0.01  # weight of the mean squared logit; used by method sd
    cue_type: str = "pixel"  # pixel, texture or position
    train_cue_agreement: float = 1.0  # p: probability that a training cue encodes the label
    test_agreements: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)  # q of each test set
    epochs: int = 3
    batch_size: int = 128
    learning_rate: float = 1e-3  # Adam
    train_size: int | None = 20_000  # training digits; None takes all left after validation
    val_size: int = 5_000  # held-out training digits for validation
    test_size: int | None = None  # test digits; None takes all 10,000
    seed: int = 0  # model initialisation and batch order
    data_seed: int = 0  # the images: digits split, cue draws
    estimator: str = "jsd"  # MI bound of the IFM loss: jsd, dv or infonce
    critic: str = "global"  # critic form of the IFM loss: global or local
    include_input: bool = False  # also pair the input image with the first tap
    device: str = "cpu"  # cpu, cuda, cuda:N, mps or auto
    precision: str = "fp32"  # fp32, or bf16 autocast on a GPU
    tags: dict[str, str] = field(default_factory=dict, compare=False, hash=False)  # free-form labels

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            if spec.name != "tags":
                object.__setattr__(self, spec.name, _coerce(spec.name, getattr(self, spec.name), spec.type))
        _check_tags(self.tags)
        self._check_ranges()

    @classmethod
    def from_parameters(cls, **parameters: Any) -> RunConfig:
        """Build a config from notebook parameters, ignoring names that are not fields."""
        names = {spec.name for spec in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in parameters.items() if name in names})

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as JSON-ready values."""
        values = dataclasses.asdict(self)
        values["test_agreements"] = list(self.test_agreements)
        return values

    def fingerprint(self) -> str:
        """Return a short SHA-256 of every field that can change the results.

        ``device`` and ``tags`` are left out, so a rerun on another device
        or with other labels finds the same record.
        """
        values = self.to_dict()
        del values["device"], values["tags"]
        text = json.dumps(values, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def run_name(self) -> str:
        """Name a run folder after its main settings and its fingerprint."""
        weight = {"ifm": f"-w{self.ifm_weight:g}", "sd": f"-w{self.sd_weight:g}"}.get(self.method, "")
        if self.method == "ifm":
            # Non-default IFM options show in the name, not only in the hash.
            weight += "".join(
                f"-{option}"
                for option, default in ((self.estimator, "jsd"), (self.critic, "global"))
                if option != default
            )
            weight += "-input" if self.include_input else ""
        return (
            f"{self.method}{weight}-{self.cue_type}-p{self.train_cue_agreement:g}"
            f"-s{self.seed}-d{self.data_seed}-{self.fingerprint()}"
        )

    @property
    def effective_train_size(self) -> int:
        return self.train_size if self.train_size is not None else MNIST_TRAIN_DIGITS - self.val_size

    def _check_ranges(self) -> None:
        _check_choice("method", self.method, METHODS)
        _check_choice("cue_type", self.cue_type, CUE_TYPES)
        _check_choice("estimator", self.estimator, tuple(ESTIMATORS))
        _check_choice("critic", self.critic, tuple(CRITICS))
        _check_choice("precision", self.precision, PRECISIONS)
        _check_device(self.device)

        for name in ("ifm_weight", "sd_weight"):
            value = getattr(self, name)
            if not value >= 0 or math.isinf(value):
                raise ConfigError(f"{name}={value!r} is invalid; use a finite number >= 0")
        if not 0 < self.learning_rate < math.inf:
            raise ConfigError(f"learning_rate={self.learning_rate!r} is invalid; use a positive number such as 1e-3")

        _check_agreement("train_cue_agreement", self.train_cue_agreement)
        if not self.test_agreements:
            raise ConfigError("test_agreements=() is empty; give at least one q in [0, 1], e.g. [0.1]")
        for q in self.test_agreements:
            _check_agreement("test_agreements", q)

        for name in ("epochs", "batch_size", "val_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} is invalid; use a positive integer")
        for name in ("seed", "data_seed"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)!r} is invalid; use an integer >= 0")
        self._check_sizes()

    def _check_sizes(self) -> None:
        available = MNIST_TRAIN_DIGITS - self.val_size
        if available < 2:
            raise ConfigError(
                f"val_size={self.val_size} leaves {available} of the {MNIST_TRAIN_DIGITS} training digits "
                "for training; lower val_size"
            )
        if self.train_size is not None and not 2 <= self.train_size <= available:
            raise ConfigError(
                f"train_size={self.train_size} is invalid; use 2 to {available} "
                f"(the training digits left after val_size={self.val_size}) or None for all of them"
            )
        if self.test_size is not None and not 1 <= self.test_size <= MNIST_TEST_DIGITS:
            raise ConfigError(
                f"test_size={self.test_size} is invalid; use 1 to {MNIST_TEST_DIGITS} or None for all"
            )
        if self.batch_size > self.effective_train_size:
            raise ConfigError(
                f"batch_size={self.batch_size} exceeds train_size={self.effective_train_size}; "
                "lower batch_size or raise train_size"
            )
        if self.batch_size < 2 and self.method == "ifm":
            raise ConfigError(
                f"batch_size={self.batch_size} is invalid for method 'ifm': a batch needs at least "
                "2 images to have negative pairs; use batch_size >= 2"
            )


def _check_tags(tags: Any) -> None:
    """Reject tags that JSON cannot store, because the run record saves them in config.json."""
    scalar = (str, int, float, bool, type(None))
    if not isinstance(tags, dict) or not all(
        isinstance(key, str) and isinstance(value, scalar) for key, value in tags.items()
    ):
        raise ConfigError(f"tags={tags!r} is invalid; use a dict of string keys and string or number values")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not known; choose one of {list(choices)}")


def _check_device(device: str) -> None:
    base, _, index = device.partition(":")
    if base not in DEVICES or (index and (base != "cuda" or not index.isdigit())):
        raise ConfigError(f"device={device!r} is not known; use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'")


def _check_agreement(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name}={value!r} is outside [0, 1]; an agreement is a probability, so use a value from 0 to 1")


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Convert ``value`` to the field's type, or raise ConfigError naming ``name``.

    papermill's ``-p`` turns ``True``, ``False``, ``None`` and numbers into
    Python values but leaves ``false``, ``none`` and ``[1, 2]`` as strings,
    and a string such as "false" is truthy. Bool and None spellings are
    therefore converted explicitly; any other string for a number is an error.
    """
    hint = typing.get_type_hints(RunConfig)[name] if isinstance(annotation, str) else annotation
    optional = _is_optional(hint)
    base = _strip_optional(hint)

    if optional and (value is None or (isinstance(value, str) and value.strip().lower() in _NONE_STRINGS)):
        return None
    if base is bool:
        return _coerce_bool(name, value)
    if base is int:
        return _coerce_int(name, value, optional)
    if base is float:
        return _coerce_float(name, value)
    if base is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}={value!r} must be a string")
        return value
    if typing.get_origin(base) is tuple:
        return _coerce_agreements(name, value)
    raise TypeError(f"no coercion for field {name} of type {hint}")


def _is_optional(hint: Any) -> bool:
    return isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)


def _strip_optional(hint: Any) -> Any:
    if _is_optional(hint):
        (base,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return base
    return hint


def _coerce_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE_STRINGS | _FALSE_STRINGS:
        return value.strip().lower() in _TRUE_STRINGS
    raise ConfigError(f"{name}={value!r} is not a boolean; use true or false")


def _coerce_int(name: str, value: Any, optional: bool) -> int:
    fix = "use a whole number" + (" or None" if optional else "")
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{name}={value!r} is not an integer; {fix}")
    return value


def _coerce_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name}={value!r} is not a number; use a number such as 0.5")
    value = float(value)
    if math.isnan(value):
        raise ConfigError(f"{name}=nan is not a number; use a finite number")
    return value


def _coerce_agreements(name: str, value: Any) -> tuple[float, ...]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError(
            f"{name}={value!r} is not a list of numbers; pass a list, e.g. with papermill "
            f"-y '{name}: [0.0, 0.1, 1.0]'"
        )
    return tuple(sorted({_coerce_float(name, q) for q in value}))
