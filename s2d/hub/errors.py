"""The errors of finding, fetching, verifying and loading model weights: one `ZooError` family,
each message saying what is wrong and what to run to fix it."""
from __future__ import annotations

from s2d.hub.convert import CheckpointError

__all__ = ["ZooError", "UnknownModelError", "NoWeightsError", "WeightsUnavailableError", "HubError", "ChecksumError",
           "CorruptWeightsError", "ConfigFileError", "WeightsMismatchError"]


class ZooError(RuntimeError):
    """Any failure to find, fetch, verify or load model weights. The message says what to do."""


class UnknownModelError(ZooError):
    """A name that is neither a registered model, a zoo entry, a local directory nor `hf-hub:...`."""


class NoWeightsError(ZooError):
    """The model exists but no weights have been published for it."""


class WeightsUnavailableError(ZooError):
    """The weights are published but neither cached nor downloadable now (offline, no network)."""


class HubError(ZooError):
    """The Hub answered, but the repo, revision or file is missing or refused."""


class ChecksumError(ZooError):
    """A weights file whose sha256 or size differs from the one recorded in the zoo index."""


class CorruptWeightsError(ZooError):
    """A weights file that is not a readable safetensors file."""


class ConfigFileError(ZooError):
    """A missing or invalid `config.json`."""


class WeightsMismatchError(ZooError, CheckpointError):
    """Weights whose keys or shapes do not fit the model; the message names every key at fault."""
