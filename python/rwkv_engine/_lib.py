"""ctypes declarations of include/rwkv.h and the loading of the shared library.

The library is looked for, in order:
  1. $RWKV_LIBRARY, a path to the shared library (an error if it cannot be loaded);
  2. beside this package (librwkv.so copied or linked into rwkv_engine/);
  3. the system's loader path (LD_LIBRARY_PATH, ld.so.cache, ...).

It is loaded on first use, so `import rwkv_engine` works without it; the first call
that needs it raises RwkvError naming every place tried.

Handles (rwkv_model*, rwkv_state*, ...) are passed as c_void_p, and so are the
buffers (int32_t*, float*, char*): callers pass a ctypes array or a raw address (a
NumPy array's), which keeps a decode step free of wrapper objects.
"""

import ctypes
import os
import sys
import threading
from ctypes import POINTER, Structure, c_char_p, c_float, c_int, c_int32, c_int64, c_size_t, c_uint64, c_void_p

try:
    import numpy as np
except ImportError:  # NumPy is optional: logits and states are then lists of floats.
    np = None

# RWKV_API_VERSION of the header these declarations follow.
API_VERSION = 1


class RwkvError(RuntimeError):
    """An error reported by the library (its message names the file, argument or token)."""


class SamplerParams(Structure):
    """rwkv_sampler_params."""

    _fields_ = [
        ("temperature", c_float),
        ("top_k", c_int32),
        ("top_p", c_float),
        ("min_p", c_float),
        ("repetition_penalty", c_float),
        ("presence_penalty", c_float),
        ("frequency_penalty", c_float),
        ("penalty_decay", c_float),
        ("seed", c_uint64),
        ("order", c_int32),
        ("bias_ids", c_void_p),  # const int32_t*
        ("bias_values", c_void_p),  # const float*
        ("n_bias", c_size_t),
        ("banned_ids", c_void_p),  # const int32_t*
        ("n_banned", c_size_t),
    ]


class BatchItem(Structure):
    """rwkv_batch_item."""

    _fields_ = [
        ("tokens", c_void_p),  # const int32_t*
        ("n_tokens", c_size_t),
        ("state", c_void_p),  # rwkv_state*
        ("logits", c_void_p),  # float* or NULL
        ("n_logits", c_size_t),
    ]


SAMPLING_OFFICIAL = 0
SAMPLING_LLAMA = 1

# name: (restype, argtypes), in the order of include/rwkv.h.
_FUNCTIONS = {
    # Library
    "rwkv_api_version": (c_int32, []),
    "rwkv_version": (c_char_p, []),
    "rwkv_last_error": (c_char_p, []),
    "rwkv_set_threads": (c_int, [c_int32]),
    "rwkv_get_threads": (c_int32, []),
    "rwkv_default_model_path": (c_char_p, []),
    # Models
    "rwkv_model_load": (c_void_p, [c_char_p]),
    "rwkv_model_free": (None, [c_void_p]),
    "rwkv_model_n_vocab": (c_int32, [c_void_p]),
    "rwkv_model_n_layer": (c_int32, [c_void_p]),
    "rwkv_model_n_embd": (c_int32, [c_void_p]),
    "rwkv_model_n_head": (c_int32, [c_void_p]),
    "rwkv_model_head_size": (c_int32, [c_void_p]),
    "rwkv_model_arch": (c_char_p, [c_void_p]),
    "rwkv_model_tokenizer_kind": (c_char_p, [c_void_p]),
    "rwkv_model_state_size": (c_size_t, [c_void_p]),
    "rwkv_convert": (c_int, [c_char_p, c_char_p, c_char_p]),
    "rwkv_quantize": (c_int, [c_char_p, c_char_p, c_char_p]),
    # States
    "rwkv_state_new": (c_void_p, [c_void_p]),
    "rwkv_state_copy": (c_void_p, [c_void_p]),
    "rwkv_state_free": (None, [c_void_p]),
    "rwkv_state_reset": (c_int, [c_void_p]),
    "rwkv_state_assign": (c_int, [c_void_p, c_void_p]),
    "rwkv_state_data": (c_void_p, [c_void_p]),  # float*
    "rwkv_state_size": (c_size_t, [c_void_p]),
    "rwkv_state_save": (c_int, [c_void_p, c_char_p]),
    "rwkv_state_load": (c_void_p, [c_void_p, c_char_p]),
    "rwkv_state_load_tuned": (c_void_p, [c_void_p, c_char_p]),
    "rwkv_state_to_bytes": (c_int64, [c_void_p, c_void_p, c_size_t]),
    "rwkv_state_from_bytes": (c_void_p, [c_void_p, c_void_p, c_size_t]),
    # Evaluation
    "rwkv_eval": (c_int, [c_void_p, c_void_p, c_void_p, c_size_t, c_void_p]),
    "rwkv_eval_all": (c_int, [c_void_p, c_void_p, c_void_p, c_size_t, c_void_p]),
    "rwkv_eval_batch": (c_int, [c_void_p, POINTER(BatchItem), c_size_t]),
    # Tokenizers
    "rwkv_tokenizer_load": (c_void_p, [c_char_p, c_char_p]),
    "rwkv_tokenizer_for_model": (c_void_p, [c_void_p, c_char_p]),
    "rwkv_tokenizer_free": (None, [c_void_p]),
    "rwkv_tokenizer_vocab_size": (c_int32, [c_void_p]),
    "rwkv_tokenizer_kind": (c_char_p, [c_void_p]),
    "rwkv_tokenize": (c_int64, [c_void_p, c_char_p, c_size_t, c_void_p, c_size_t]),
    "rwkv_detokenize": (c_int64, [c_void_p, c_void_p, c_size_t, c_void_p, c_size_t]),
    "rwkv_decoder_new": (c_void_p, [c_void_p]),
    "rwkv_decoder_free": (None, [c_void_p]),
    # The text is returned as an address: its length is in *n_bytes, it may hold NULs.
    "rwkv_decoder_push": (c_void_p, [c_void_p, c_int32, POINTER(c_size_t)]),
    "rwkv_decoder_flush": (c_void_p, [c_void_p, POINTER(c_size_t)]),
    # Sampling
    "rwkv_sampler_default_params": (SamplerParams, []),
    "rwkv_sampler_new": (c_void_p, [POINTER(SamplerParams), c_int32]),
    "rwkv_sampler_free": (None, [c_void_p]),
    "rwkv_sampler_sample": (c_int32, [c_void_p, c_void_p]),
    "rwkv_sampler_accept": (c_int, [c_void_p, c_int32, c_int]),
    "rwkv_sampler_reset": (c_int, [c_void_p]),
}


def _library_file_names():
    if sys.platform == "darwin":
        return ["librwkv.dylib"]
    if sys.platform == "win32":
        return ["rwkv.dll", "librwkv.dll"]
    return ["librwkv.so"]


_lock = threading.Lock()
_lib = None
_lib_path = None


def _declare(lib):
    for name, (restype, argtypes) in _FUNCTIONS.items():
        fn = getattr(lib, name)  # AttributeError names a symbol the library lacks
        fn.restype = restype
        fn.argtypes = argtypes


def _try_load(candidates):
    """Loads the first candidate that opens; returns (lib, path, [reasons])."""
    reasons = []
    for path in candidates:
        try:
            return ctypes.CDLL(path), path, reasons
        except OSError as e:
            reasons.append(f"{path}: {e}")
    return None, None, reasons


def _find_and_load():
    env = os.environ.get("RWKV_LIBRARY")
    if env:
        lib, path, reasons = _try_load([env])
        if lib is None:
            raise RwkvError(f"RWKV_LIBRARY={env} could not be loaded: {reasons[0]}")
        return lib, path
    here = os.path.dirname(os.path.abspath(__file__))
    beside = [os.path.join(here, name) for name in _library_file_names()]
    lib, path, reasons = _try_load([p for p in beside if os.path.exists(p)])
    if lib is not None:
        return lib, path
    tried = ["RWKV_LIBRARY (not set)"] + [f"{p} (absent)" for p in beside if not os.path.exists(p)] + reasons
    system = list(_library_file_names())
    import ctypes.util

    found = ctypes.util.find_library("rwkv")
    if found and found not in system:
        system.append(found)
    lib, path, reasons = _try_load(system)
    if lib is not None:
        return lib, path
    tried += [f"system loader path: {r}" for r in reasons]
    raise RwkvError("rwkv_engine: cannot find the rwkv shared library; tried:\n  " + "\n  ".join(tried) +
                    "\nSet RWKV_LIBRARY to the path of librwkv.so (built as the rwkv_shared target).")


def lib():
    """The loaded library, its functions declared (loads it on the first call)."""
    global _lib, _lib_path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            loaded, path = _find_and_load()
            try:
                _declare(loaded)
            except AttributeError as e:
                raise RwkvError(f"{path}: not the rwkv library of this package's version ({e})") from None
            version = loaded.rwkv_api_version()
            if version != API_VERSION:
                raise RwkvError(f"{path}: C API version {version}, this package needs {API_VERSION}")
            _lib_path = path
            _lib = loaded
    return _lib


def library_path():
    """The path (or loader name) the library was loaded from."""
    lib()
    return _lib_path


def last_error():
    message = lib().rwkv_last_error()
    return message.decode("utf-8", errors="replace") if message else ""


def error(what=None):
    """A RwkvError with the library's last message (prefixed with `what` when it is empty)."""
    message = last_error()
    if not message:
        message = f"{what or 'rwkv'}: failed (the library gave no message)"
    return RwkvError(message)


def check(rc):
    """Raises RwkvError when a call returned -1 (or a NULL handle)."""
    if rc is None or rc == -1:
        raise error()
    return rc


def encode_path(path):
    """A path (str, bytes or os.PathLike) as bytes for a const char* argument."""
    return os.fsencode(path)
