"""Weight resolution: a local folder, or the Hugging Face hub (its cache, revision pinning, HF_HUB_OFFLINE),
falling back to the weights bundled in `weights/` when the hub cannot be reached.

A model folder holds `config.json` (NetworkConfig fields + torch_dtype) and `model.safetensors` (never pickle),
plus a model card `README.md` and optionally `model_int8.onnx`, the quantized network. Every file is checked
before use: a corrupt, truncated or mismatched file raises ModelFileError naming the file and what is wrong.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ModelFileError
from .config import NetworkConfig

if TYPE_CHECKING:  # torch is imported by the functions that load or save tensors: resolve_weights needs none
    import torch

    from .network import FaceReconNet

log = logging.getLogger("facerecon")

DEFAULT_REPO_ID = "facerecon/facerecon"
BUNDLED_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"
INT8_NAME = "model_int8.onnx"  # optional: the quantized network (facerecon.model.quantize, backend onnx-int8)
DTYPE_NAMES = ("float16", "bfloat16", "float32")  # config.json's torch_dtype


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _unreachable(url: str) -> str | None:
    """Why the hub cannot be reached (one request, no retries), or None when it answers, whatever the answer.

    With nothing cached, huggingface_hub retries a request that failed on the network 5 times with backoff
    (about 23 s) before giving up, so an offline first start would wait that long for the bundled weights."""
    from huggingface_hub import get_hf_file_metadata
    from huggingface_hub.errors import HfHubHTTPError

    try:
        get_hf_file_metadata(url)
    except HfHubHTTPError:
        return None  # an answer: hf_hub_download tells what it means
    except Exception as e:  # noqa: BLE001 - DNS, connection, TLS, proxy or timeout errors of the HTTP client in use
        return f"{type(e).__name__}: {e}".splitlines()[0][:200]
    return None


def resolve_weights(source: str | os.PathLike | None = None, revision: str | None = None) -> Path:
    """Folder holding config.json + model.safetensors for `source`: a local folder or a hub repo id.

    None means $FACERECON_MODEL or DEFAULT_REPO_ID, and for it any hub failure falls back to the bundled weights;
    for an explicit repo id only an unreachable hub (offline, no network, server error) does.
    """
    from huggingface_hub import hf_hub_download, hf_hub_url, try_to_load_from_cache
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.utils import validate_repo_id

    is_default = source is None
    source = str(source) if source is not None else os.environ.get("FACERECON_MODEL", DEFAULT_REPO_ID)
    local = Path(source).expanduser()
    if local.is_dir():
        return local
    if local.exists() or source.startswith((".", "/", "~")) or source.count("/") > 1:
        raise ModelFileError(f"{source}: not a model folder (expected a folder with {CONFIG_NAME} and {WEIGHTS_NAME})")

    def fallback(reason: str) -> Path:
        # offline, the default model falling back to the bundled copy is the expected case: said at INFO (the CLI's
        # --verbose); a repo id the caller named and did not get is worth a warning
        log.log(logging.INFO if is_default else logging.WARNING,
                "facerecon: could not get %s from the Hugging Face hub (%s); using the bundled weights in %s",
                source, reason, BUNDLED_WEIGHTS)
        return BUNDLED_WEIGHTS

    # read at call time (huggingface_hub reads these once, at import)
    kwargs = {"endpoint": os.environ.get("HF_ENDPOINT") or None, "cache_dir": os.environ.get("HF_HUB_CACHE") or None,
              "local_files_only": _offline()}
    try:
        validate_repo_id(source)
        if not kwargs["local_files_only"] and not isinstance(
                try_to_load_from_cache(source, CONFIG_NAME, kwargs["cache_dir"], revision), str):
            unreachable = _unreachable(hf_hub_url(source, CONFIG_NAME, revision=revision, endpoint=kwargs["endpoint"]))
            if unreachable:
                return fallback(f"hub unreachable: {unreachable}")
        config_path = Path(hf_hub_download(source, CONFIG_NAME, revision=revision, **kwargs))
        # pin the second file to the commit the first came from, so both belong to one revision
        commit = config_path.parent.name
        weights_path = Path(hf_hub_download(source, WEIGHTS_NAME, revision=commit, **kwargs))
        if weights_path.parent != config_path.parent:
            raise ModelFileError(f"{source}: {CONFIG_NAME} and {WEIGHTS_NAME} resolved to different revisions")
        try:
            hf_hub_download(source, INT8_NAME, revision=commit, **kwargs)
        except (RemoteEntryNotFoundError, LocalEntryNotFoundError):
            pass  # a repo without it runs the float network
        return config_path.parent
    except HFValidationError as e:
        raise ModelFileError(f"{source}: not a valid hub repo id or local folder ({e})") from None
    except LocalEntryNotFoundError:  # offline, or the hub unreachable, and nothing in the cache
        return fallback("hub unreachable or offline, and nothing cached")
    except (RepositoryNotFoundError, RevisionNotFoundError, GatedRepoError, RemoteEntryNotFoundError) as e:
        if is_default:
            return fallback(type(e).__name__)
        raise ModelFileError(f"{source} (revision {revision or 'main'}): {type(e).__name__}: "
                             f"{str(e).splitlines()[0]}") from None
    except (OfflineModeIsEnabled, HfHubHTTPError, OSError) as e:
        return fallback(f"{type(e).__name__}: {e}".splitlines()[0][:200])


def read_config(folder: Path) -> tuple[NetworkConfig, str | None]:
    """The network config and the weights' dtype name (config.json's torch_dtype, None when absent)."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise ModelFileError(f"{path}: missing")
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("the top level is not an object")
        dtype_name = data.pop("torch_dtype", None)
        if dtype_name is not None and dtype_name not in DTYPE_NAMES:
            raise ValueError(f"torch_dtype {dtype_name!r} is not one of {sorted(DTYPE_NAMES)}")
        return NetworkConfig.from_dict(data), dtype_name
    except (ValueError, TypeError, UnicodeDecodeError) as e:  # json.JSONDecodeError is a ValueError
        raise ModelFileError(f"{path}: not a valid facerecon config ({e})") from None


def read_weights(folder: Path, model: FaceReconNet, dtype_name: str | None) -> dict[str, torch.Tensor]:
    """Load model.safetensors after checking every tensor's name, shape and dtype against the network."""
    import torch
    from safetensors import SafetensorError, safe_open

    dtype = getattr(torch, dtype_name) if dtype_name else None
    path = Path(folder) / WEIGHTS_NAME
    if not path.is_file():
        raise ModelFileError(f"{path}: missing")
    expected = model.state_dict()
    try:
        with safe_open(str(path), framework="pt") as f:
            names = set(f.keys())
            missing, unexpected = sorted(set(expected) - names), sorted(names - set(expected))
            if missing or unexpected:
                raise ModelFileError(f"{path}: does not match the network in {CONFIG_NAME}: "
                                     f"missing tensors {missing[:5]}, unexpected tensors {unexpected[:5]}")
            tensors = {}
            for name in expected:
                t = f.get_tensor(name)
                want = expected[name]
                if tuple(t.shape) != tuple(want.shape):
                    raise ModelFileError(f"{path}: tensor {name} has shape {tuple(t.shape)}, "
                                         f"the config needs {tuple(want.shape)}")
                if want.is_floating_point():
                    if dtype is not None and t.dtype != dtype:
                        raise ModelFileError(f"{path}: tensor {name} is {t.dtype}, config.json says {dtype}")
                    if not torch.isfinite(t).all():
                        raise ModelFileError(f"{path}: tensor {name} holds NaN or infinite values")
                elif t.dtype != want.dtype:
                    raise ModelFileError(f"{path}: tensor {name} is {t.dtype}, expected {want.dtype}")
                tensors[name] = t
    except SafetensorError as e:
        raise ModelFileError(f"{path}: not a readable safetensors file, corrupt or truncated ({e})") from None
    except RuntimeError as e:  # torch's own errors while materialising a damaged tensor
        raise ModelFileError(f"{path}: damaged tensor data ({e})") from None
    return tensors


def load_pretrained(source: str | os.PathLike | None = None, revision: str | None = None,
                    dtype: torch.dtype | None = None) -> FaceReconNet:
    """The network with weights from `source` (see resolve_weights), in eval mode, in `dtype` (default float32)."""
    import torch

    from .network import FaceReconNet

    folder = resolve_weights(source, revision)
    config, file_dtype = read_config(folder)
    model = FaceReconNet(config)
    model.load_state_dict(read_weights(folder, model, file_dtype))
    return model.to(dtype or torch.float32).eval()


def save_pretrained(model: FaceReconNet, folder: str | os.PathLike, dtype_name: str = "float16",
                    notes: dict | None = None) -> Path:
    """Write config.json, model.safetensors (in `dtype_name`, one of DTYPE_NAMES) and a model card into `folder`."""
    import torch
    from safetensors.torch import save_file

    dtype = getattr(torch, dtype_name)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {**model.config.to_dict(), "torch_dtype": dtype_name}
    state = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    tmp = folder / (WEIGHTS_NAME + ".tmp")
    save_file(state, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, folder / WEIGHTS_NAME)
    (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    card = folder / "README.md"
    if not card.exists():
        card.write_text(_model_card(config, notes or {}))
    return folder


def _model_card(config: dict, notes: dict) -> str:
    params = "\n".join(f"- `{k}`: {v}" for k, v in config.items())
    extra = "\n".join(f"- {k}: {v}" for k, v in notes.items())
    return f"""---
library_name: facerecon
pipeline_tag: image-to-3d
tags: [face-reconstruction, depth-estimation, 3d]
---
# facerecon network weights

Single-photo 3D face reconstruction: a ResNet18 + FPN network predicting a face mask, a coarse depth map and a
detail displacement map for a 256x256 aligned face crop (see the facerecon repository, docs/representation.md).

Load with `facerecon.model.hub.load_pretrained("<this folder or repo id>")`.

## Configuration
{params}

## Notes
{extra or "- none"}
"""
