"""rwkv_engine: RWKV inference on the CPU, a pure-Python binding of the rwkv-engine C
library (librwkv.so) through ctypes.

    import rwkv_engine
    model = rwkv_engine.Model("rwkv7-world-0.1b.rwkv")      # or Model() for the default model
    logits, state = model.forward([33155, 45, 40213], None)
    pipe = rwkv_engine.Pipeline(model)
    print(pipe.generate("The Python interpreter", max_tokens=100, temperature=0).text)

Scripts written for the official `rwkv` package change one import:
`from rwkv_engine.model import RWKV` and `from rwkv_engine.utils import PIPELINE, PIPELINE_ARGS`.

The library is found through $RWKV_LIBRARY (a path), else beside this package, else
through the system's loader path. Errors raise RwkvError with the library's message.
"""

from ._lib import RwkvError, library_path
from .core import Model, State, convert, default_model_path, get_threads, quantize, set_threads, version
from .pipeline import GenerateResult, Pipeline
from .sampler import Sampler
from .tokenizer import StreamDecoder, Tokenizer

__version__ = "0.1.0"

__all__ = [
    "GenerateResult",
    "Model",
    "Pipeline",
    "RwkvError",
    "Sampler",
    "State",
    "StreamDecoder",
    "Tokenizer",
    "convert",
    "default_model_path",
    "get_threads",
    "library_path",
    "quantize",
    "set_threads",
    "version",
]
