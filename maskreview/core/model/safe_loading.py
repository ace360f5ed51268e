"""Reading model files that came from elsewhere (configs, checkpoints) without running code from them.

Weights load safely: ``.pth`` with ``torch.load(weights_only=True)``; detectron2's ``.pkl``
pickles with an unpickler that admits only numpy arrays and plain containers. Configs load
with a safe YAML loader (:func:`load_config`). Anything else needs ``trust_checkpoint=True``
(``--trust-checkpoint``). ``tests/test_untrusted_configs.py`` fails on a direct call of an
unsafe loader anywhere else.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import warnings
from pathlib import Path

from maskreview.core.errors import BadInputError, MaskreviewError

TRUST_HINT = "pass --trust-checkpoint only if you trust where the file came from"


class UntrustedCheckpointError(BadInputError):
    """A checkpoint or config that would run code when loaded; ``--trust-checkpoint`` admits it."""


class UntrustedConfigError(UntrustedCheckpointError):
    pass


_YAML_TAG_PREFIX = "tag:yaml.org,2002:"


def load_config(config_file: str | os.PathLike, trust_config: bool = False):
    """A detectron2 ``CfgNode`` from a YAML file and its ``_BASE_`` chain, read as plain data.

    detectron2 falls back to ``yaml.unsafe_load`` when a file holds Python tags, which runs
    whatever the tag names. Configs come from the same places as weights (a colleague's model
    folder, a download), so a tag is refused, naming the file and the tag, unless the user
    trusts the file (``--trust-checkpoint``).
    """
    import yaml
    from detectron2.config import get_cfg

    cfg = get_cfg()
    try:
        cfg.merge_from_file(str(config_file), allow_unsafe=trust_config)
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        where = f"{mark.name}, line {mark.line + 1}" if mark else str(config_file)
        tag = re.search(r"tag '([^']+)'", exc.problem or "")
        tag = tag.group(1).replace(_YAML_TAG_PREFIX, "!!") if tag else (exc.problem or "an unknown tag")
        pulled_in = "" if mark and Path(mark.name) == Path(config_file) else f" (a _BASE_ of {config_file})"
        raise UntrustedConfigError(
            f"{where}{pulled_in}: config holds the YAML tag {tag}, which would run Python code; "
            f"refusing ({TRUST_HINT})"
        ) from exc
    except Exception as exc:  # yaml errors, unknown keys, missing _BASE_
        first = (str(exc).splitlines() or [""])[0][:200]
        raise BadInputError(f"{config_file}: not a usable detectron2 config ({type(exc).__name__}: {first})") from exc
    return cfg


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Admits numpy arrays, numpy scalars and plain containers; refuses every other global."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset"),
        ("builtins", "bytearray"), ("builtins", "slice"), ("builtins", "complex"),
        # bytes pickled with protocol <= 2 (numpy array data among them) come through encode
        ("_codecs", "encode"), ("codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise UntrustedCheckpointError(
            f"checkpoint wants to load {module}.{name}, which is not a numpy array or plain data; "
            f"refusing ({TRUST_HINT})"
        )


def load_pickle_safely(data: bytes):
    return _ArraysOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


def _pkl_checkpoint(path: Path, trust_checkpoint: bool) -> dict:
    raw = path.read_bytes()
    data = pickle.loads(raw, encoding="latin1") if trust_checkpoint else load_pickle_safely(raw)
    if not isinstance(data, dict):
        raise BadInputError(f"{path}: not a detectron2 checkpoint (a {type(data).__name__})")
    if "model" in data and "__author__" in data:  # detectron2 model zoo format
        return data
    data = data.get("blobs", data)  # Caffe2 / Detectron1 format
    data = {k: v for k, v in data.items() if not k.endswith("_momentum")}
    return {"model": data, "__author__": "Caffe2", "matching_heuristics": True}


def _is_pickle(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5  # PROTO opcode, protocol 2..5


def load_checkpoint_file(path: str | os.PathLike, trust_checkpoint: bool = False) -> dict:
    """Read a checkpoint into ``{"model": state_dict, ...}`` without running code from it."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path}: weights file not found")
    if path.stat().st_size == 0:
        raise BadInputError(f"{path}: empty weights file (0 bytes)")
    try:
        if path.suffix == ".pkl":
            loaded = _pkl_checkpoint(path, trust_checkpoint)
        else:
            with warnings.catch_warnings():  # torch warns about the pickle protocol of a file it then refuses
                warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
                loaded = torch.load(path, map_location="cpu", weights_only=not trust_checkpoint)
    except UntrustedCheckpointError as exc:
        raise UntrustedCheckpointError(f"{path}: {exc}") from exc
    except pickle.UnpicklingError as exc:
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if refused or "allowlist" in str(exc):
            what = refused.group(1) if refused else "a Python object"
            raise UntrustedCheckpointError(
                f"{path}: holds {what}, not only tensors and plain data; refusing ({TRUST_HINT})"
            ) from exc
        unreadable = re.search(r"WeightsUnpickler error:\s*(.+)", str(exc))
        if unreadable and _is_pickle(path):  # a plain pickle (not torch's format) the tensors-only reader cannot follow
            raise UntrustedCheckpointError(
                f"{path}: cannot be read as tensors and plain data only ({unreadable.group(1).strip()[:120]}); "
                f"refusing ({TRUST_HINT})"
            ) from exc
        raise BadInputError(f"{path}: corrupt or not a checkpoint ({str(exc).splitlines()[-1][:200]})") from exc
    except MaskreviewError:
        raise
    except Exception as exc:  # truncated zip, junk bytes, a pickle of the wrong shape...
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise BadInputError(f"{path}: corrupt or not a checkpoint ({first})") from exc
    if not isinstance(loaded, dict):
        raise BadInputError(f"{path}: not a state dict (a {type(loaded).__name__})")
    loaded = loaded if "model" in loaded else {"model": loaded}
    if not isinstance(loaded["model"], dict):
        raise BadInputError(f"{path}: its 'model' entry is not a state dict")
    _check_state_dict(path, loaded["model"])
    return loaded


def _check_state_dict(path: Path, state: dict) -> None:
    """Every entry a numeric tensor or array under a string key (detectron2 would raise deep inside).

    Numpy scalars become 0-d arrays, which detectron2 takes.
    """
    import numpy as np
    import torch

    for key, value in state.items():
        if not isinstance(key, str):
            raise BadInputError(f"{path}: not a state dict (a key is a {type(key).__name__}, not a name)")
        if isinstance(value, torch.Tensor):
            continue
        if isinstance(value, np.generic):
            value = state[key] = np.asarray(value)
        if isinstance(value, np.ndarray) and (value.dtype == bool or np.issubdtype(value.dtype, np.number)):
            continue
        what = f"an array of {value.dtype}" if isinstance(value, np.ndarray) else f"a {type(value).__name__}"
        raise BadInputError(f"{path}: entry {key[:100]!r} is {what} where a tensor belongs; not usable weights")


def make_checkpointer(model, trust_checkpoint: bool = False, **kwargs):
    """A detectron2 ``DetectionCheckpointer`` whose file reading goes through safe loading."""
    from detectron2.checkpoint import DetectionCheckpointer

    class SafeCheckpointer(DetectionCheckpointer):
        def _load_file(self, filename):
            return load_checkpoint_file(filename, trust_checkpoint)

    return SafeCheckpointer(model, **kwargs)
