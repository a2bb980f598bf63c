"""Models and states over the C API: load a model, feed tokens, read logits.

    model = Model("rwkv7-world-0.1b.rwkv")
    logits, state = model.forward([33155, 45, 40213], None)   # a new state
    logits, state = model.forward(34, state)                  # advanced in place

Logits are NumPy float32 arrays when NumPy is installed, lists of floats otherwise.
"""

import ctypes
import operator
import os
from array import array
from ctypes import addressof, c_float, c_size_t

from . import _lib
from ._lib import RwkvError, check


if array("i").itemsize != 4:  # 'i' is a C int: 32 bits on every platform the library builds for
    raise ImportError("rwkv_engine: C int is not 32 bits on this platform")


def _token_buffer(tokens):
    """tokens (an int, or a sequence of ints) as (buffer, address, count) of int32."""
    try:
        if type(tokens) is int:
            buf = array("i", (tokens,))
        elif isinstance(tokens, (str, bytes, bytearray)):
            # array() would take bytes as raw int32 memory: refuse text of any kind.
            raise TypeError(f"tokens must be token ids, not {type(tokens).__name__} (encode text with a Tokenizer)")
        else:
            try:
                buf = array("i", tokens)
            except TypeError:
                if hasattr(tokens, "__index__"):  # a NumPy integer
                    buf = array("i", (operator.index(tokens),))
                else:  # e.g. a NumPy array of int64
                    buf = array("i", [operator.index(t) for t in tokens])
    except OverflowError:
        raise RwkvError(f"a token id is outside the range of int32: {tokens!r}") from None
    address, count = buf.buffer_info()
    return buf, address, count


def _float_buffer(count):
    """Room for `count` float32 values: (buffer, address)."""
    np = _lib.np
    if np is not None:
        out = np.empty(count, dtype=np.float32)
        return out, out.ctypes.data
    out = (c_float * count)()
    return out, addressof(out)


def _as_result(buf, rows=None, row_size=None):
    """A buffer from _float_buffer as what forward returns: the array, or list(s) of floats."""
    if not isinstance(buf, ctypes.Array):  # a NumPy array
        return buf if rows is None else buf.reshape(rows, row_size)
    values = memoryview(buf).cast("B").cast("f").tolist()
    if rows is None:
        return values
    return [values[i * row_size:(i + 1) * row_size] for i in range(rows)]


class Model:
    """A loaded model: immutable, shareable between threads (each with its own states)."""

    def __init__(self, path=None):
        """Loads a native model file, or converts any format the library reads in memory.

        `path` None loads the default model (see default_model_path())."""
        lib = _lib.lib()
        if path is None:
            path = default_model_path()
        self._handle = None
        handle = lib.rwkv_model_load(_lib.encode_path(path))
        if not handle:
            raise _lib.error(f"{path}: cannot load")
        self._handle = handle
        self._lib = lib
        self.path = os.fspath(path)
        self.n_vocab = lib.rwkv_model_n_vocab(handle)
        self.n_layer = lib.rwkv_model_n_layer(handle)
        self.n_embd = lib.rwkv_model_n_embd(handle)
        self.n_head = lib.rwkv_model_n_head(handle)
        self.head_size = lib.rwkv_model_head_size(handle)
        self.arch = lib.rwkv_model_arch(handle).decode()
        self.tokenizer_kind = lib.rwkv_model_tokenizer_kind(handle).decode()
        self.state_size = lib.rwkv_model_state_size(handle)

    def __del__(self):
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            self._lib.rwkv_model_free(handle)

    def close(self):
        """Frees the model now (states made from it keep working)."""
        self.__del__()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f"<rwkv_engine.Model {self.path!r} v{self.arch} n_layer={self.n_layer} n_embd={self.n_embd} "
                f"n_vocab={self.n_vocab} tokenizer={self.tokenizer_kind}>")

    def _h(self):
        if not self._handle:
            raise RwkvError(f"{self.path}: the model has been closed")
        return self._handle

    def new_state(self):
        """A new initial state."""
        return State(self)

    def forward(self, tokens, state=None, full_output=False):
        """Feeds tokens (an int or a sequence of ints) and returns (logits, state).

        `state` None starts from a new initial state; a given state is advanced in place
        and returned. The logits are the last token's n_vocab values, or with full_output
        every token's, shape [len(tokens), n_vocab]. The state is unchanged on error."""
        if state is None:
            state = State(self)
        elif not isinstance(state, State):
            raise TypeError(f"state must be an rwkv_engine.State or None, not {type(state).__name__}")
        tokens_buf, tokens_address, n = _token_buffer(tokens)  # tokens_buf: alive through the call
        if n == 0:
            raise RwkvError("forward: no tokens given (at least one is needed)")
        if full_output:
            logits, address = _float_buffer(n * self.n_vocab)
            rc = self._lib.rwkv_eval_all(self._h(), state._handle, tokens_address, n, address)
            if rc != 0:
                raise _lib.error()
            return _as_result(logits, n, self.n_vocab), state
        logits, address = _float_buffer(self.n_vocab)
        if self._lib.rwkv_eval(self._h(), state._handle, tokens_address, n, address) != 0:
            raise _lib.error()
        return _as_result(logits), state

    def advance(self, tokens, state):
        """Feeds tokens into `state` without computing logits (a prompt read for later)."""
        tokens_buf, tokens_address, n = _token_buffer(tokens)
        if n == 0:
            raise RwkvError("advance: no tokens given (at least one is needed)")
        if self._lib.rwkv_eval(self._h(), state._handle, tokens_address, n, None) != 0:
            raise _lib.error()
        return state

    def forward_batch(self, items, full_output=False):
        """Advances several independent sequences at once; returns their logits in order.

        `items` is a sequence of (tokens, state) pairs, each state advanced in place (no
        two items may share one). Every weight matrix is read once for all of them, so
        B sequences taking one token each cost far less than B forward() calls. The
        results equal forward() on each item within float rounding. No state changes
        when an error is raised."""
        items = list(items)
        c_items = (_lib.BatchItem * max(len(items), 1))()
        keep = []  # the token and logit buffers, alive until the call returns
        results = []
        for i, item in enumerate(items):
            try:
                tokens, state = item
            except (TypeError, ValueError):
                raise TypeError(f"batch item {i}: expected a (tokens, state) pair") from None
            if not isinstance(state, State):
                raise TypeError(f"batch item {i}: the state must be an rwkv_engine.State, "
                                f"not {type(state).__name__}")
            tokens_buf, tokens_address, n = _token_buffer(tokens)
            n_logits = (n if full_output else 1) * self.n_vocab
            logits, address = _float_buffer(n_logits)
            keep.append(tokens_buf)
            results.append((logits, n))
            c_items[i] = _lib.BatchItem(tokens_address, n, state._handle, address, n_logits)
        if self._lib.rwkv_eval_batch(self._h(), c_items, len(items)) != 0:
            raise _lib.error()
        if full_output:
            return [_as_result(logits, n, self.n_vocab) for logits, n in results]
        return [_as_result(logits) for logits, _ in results]

    def load_state(self, path):
        """A state saved with State.save (or `rwkv-cli generate --state-out`)."""
        return State.load(self, path)

    def load_tuned_state(self, pth_path):
        """A state-tuning checkpoint (.pth with blocks.N.att.time_state) as a start state."""
        return State.load_tuned(self, pth_path)


class State:
    """A model's recurrent state: flat float32 storage owned by the library.

    A plain value: copy() clones it, to_bytes()/from_bytes() and save()/load() store it.
    numpy() is a view of its floats, for reading and writing in place."""

    def __init__(self, model):
        self._handle = None
        self._lib = model._lib
        self.model = model
        handle = self._lib.rwkv_state_new(model._h())
        if not handle:
            raise _lib.error()
        self._handle = handle

    @classmethod
    def _wrap(cls, model, handle):
        if not handle:
            raise _lib.error()
        state = cls.__new__(cls)
        state._lib = model._lib
        state.model = model
        state._handle = handle
        return state

    def __del__(self):
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            self._lib.rwkv_state_free(handle)

    def __repr__(self):
        return f"<rwkv_engine.State of {self.model.path!r}, {len(self)} floats>"

    def __len__(self):
        return self._lib.rwkv_state_size(self._handle)

    @property
    def size(self):
        """Floats in the state (Model.state_size)."""
        return len(self)

    def copy(self):
        """An independent copy."""
        return State._wrap(self.model, self._lib.rwkv_state_copy(self._handle))

    __copy__ = copy

    def __deepcopy__(self, memo):
        return self.copy()

    def reset(self):
        """Back to the initial state."""
        check(self._lib.rwkv_state_reset(self._handle))
        return self

    def assign(self, other):
        """Copies `other` (a state of the same model) into this one."""
        if not isinstance(other, State):
            raise TypeError(f"expected an rwkv_engine.State, not {type(other).__name__}")
        check(self._lib.rwkv_state_assign(self._handle, other._handle))
        return self

    def _data_buffer(self):
        n = len(self)
        buf = (c_float * n).from_address(self._lib.rwkv_state_data(self._handle))
        buf._owner = self  # the memory lives as long as the state
        return buf

    def numpy(self):
        """A float32 NumPy view of the state's memory: writes change the state."""
        np = _lib.np
        if np is None:
            raise RwkvError("State.numpy() needs NumPy; use State.tolist() / State.set_data()")
        return np.ctypeslib.as_array(self._data_buffer())

    def tolist(self):
        """The state's floats as a list (a copy)."""
        return self._data_buffer()[:]

    @property
    def data(self):
        """numpy() when NumPy is present, tolist() otherwise."""
        return self.numpy() if _lib.np is not None else self.tolist()

    def set_data(self, values):
        """Overwrites the state's floats with `values` (len(self) numbers)."""
        buf = self._data_buffer()
        if len(values) != len(buf):
            raise RwkvError(f"state data: {len(values)} values given, the state holds {len(buf)}")
        buf[:] = [float(v) for v in values]
        return self

    def to_bytes(self):
        """The bytes of a state file (checksummed; records the model's shape)."""
        n = self._lib.rwkv_state_to_bytes(self._handle, None, 0)
        check(n)
        buf = ctypes.create_string_buffer(n)
        check(self._lib.rwkv_state_to_bytes(self._handle, buf, n))
        return buf.raw

    @classmethod
    def from_bytes(cls, model, data):
        """A state from to_bytes() output (or a state file's content) for `model`."""
        data = bytes(data)
        return cls._wrap(model, model._lib.rwkv_state_from_bytes(model._h(), data, c_size_t(len(data))))

    def save(self, path):
        """Writes a state file."""
        check(self._lib.rwkv_state_save(self._handle, _lib.encode_path(path)))

    @classmethod
    def load(cls, model, path):
        """Reads a state file written by save() for `model`."""
        return cls._wrap(model, model._lib.rwkv_state_load(model._h(), _lib.encode_path(path)))

    @classmethod
    def load_tuned(cls, model, pth_path):
        """A state-tuning checkpoint (.pth with blocks.N.att.time_state) as a start state."""
        return cls._wrap(model, model._lib.rwkv_state_load_tuned(model._h(), _lib.encode_path(pth_path)))


def default_model_path():
    """$RWKV_DEFAULT_MODEL when set, else the model the build or installation put in place."""
    path = _lib.lib().rwkv_default_model_path()
    if path is None:
        raise _lib.error("default model")
    return os.fsdecode(path)


def set_threads(n_threads):
    """Threads for the matrix products (0 = one per physical core); only before the first
    model is loaded (RwkvError afterwards, unless n is the count in use)."""
    check(_lib.lib().rwkv_set_threads(int(n_threads)))


def get_threads():
    """The thread count in use (or that will be used)."""
    return _lib.lib().rwkv_get_threads()


def version():
    """The library's version, "MAJOR.MINOR.PATCH"."""
    return _lib.lib().rwkv_version().decode()


def convert(input_path, output_path, type=None):
    """Converts a model of any readable format to a native file; `type` is "f32", "f16",
    "bf16", "q8_0", "q4_s" or None to keep the source's precision."""
    check(_lib.lib().rwkv_convert(_lib.encode_path(input_path), _lib.encode_path(output_path),
                                  type.encode() if type else None))


def quantize(input_path, output_path, type):
    """Re-quantizes a native model file's matrices to `type`."""
    check(_lib.lib().rwkv_quantize(_lib.encode_path(input_path), _lib.encode_path(output_path), type.encode()))
