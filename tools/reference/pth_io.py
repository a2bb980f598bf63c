"""Read and write PyTorch ``torch.save`` checkpoints (zip format) with the
Python standard library only.

Reader: ``load_pth(path) -> OrderedDict name -> Tensor`` where ``Tensor`` has
``shape`` (tuple), ``dtype`` ('f32' | 'f16' | 'bf16' | 'f64') and ``data``
(flat list of Python floats, C order, strides and storage offset applied).

Writer: ``save_pth(path, tensors, dtype=...)`` writes a file that real
``torch.load`` accepts: an uncompressed (STORED) zip with
``<prefix>/data.pkl`` (pickle protocol 2 of an OrderedDict, each tensor a
REDUCE of ``torch._utils._rebuild_tensor_v2`` whose storage is a BINPERSID
tuple), ``<prefix>/byteorder``, one raw little-endian ``<prefix>/data/<key>``
per storage (data aligned to 64 bytes with an ``FB`` extra field in the local
header, as torch's writer does) and ``<prefix>/version``.
"""

import collections
import io
import math
import os
import pickle
import struct
import zipfile
import zlib

__all__ = ["Tensor", "load_pth", "save_pth", "round_to_dtype", "DTYPES"]


class Tensor:
    __slots__ = ("shape", "dtype", "data")

    def __init__(self, shape, dtype, data):
        self.shape = tuple(int(s) for s in shape)
        self.dtype = dtype
        self.data = data

    def numel(self):
        n = 1
        for s in self.shape:
            n *= s
        return n

    def __repr__(self):
        return "Tensor(shape=%r, dtype=%s)" % (self.shape, self.dtype)


# storage class name -> (our dtype, element size)
_STORAGE_TYPES = {
    "FloatStorage": ("f32", 4),
    "HalfStorage": ("f16", 2),
    "BFloat16Storage": ("bf16", 2),
    "DoubleStorage": ("f64", 8),
}
_DTYPE_TO_STORAGE = {v[0]: k for k, v in _STORAGE_TYPES.items()}
DTYPES = ("f32", "f16", "bf16")


# ----------------------------------------------------------------------------
# element conversion

def _decode(raw, dtype):
    if dtype == "f32":
        return list(struct.unpack("<%df" % (len(raw) // 4), raw))
    if dtype == "f16":
        return list(struct.unpack("<%de" % (len(raw) // 2), raw))
    if dtype == "f64":
        return list(struct.unpack("<%dd" % (len(raw) // 8), raw))
    if dtype == "bf16":
        n = len(raw) // 2
        hs = struct.unpack("<%dH" % n, raw)
        return list(struct.unpack("<%df" % n, struct.pack("<%dI" % n, *[h << 16 for h in hs])))
    raise ValueError("unsupported dtype " + dtype)


def _f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def _bf16_bits(x):
    """float -> bfloat16 bits, round to nearest even from the float32 value
    (what torch's float32 -> bfloat16 cast does)."""
    b = _f32_bits(x)
    if (b & 0x7F800000) == 0x7F800000 and (b & 0x007FFFFF):
        return 0x7FC0  # NaN
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) & 0xFFFF


def _encode(values, dtype):
    if dtype == "f32":
        return struct.pack("<%df" % len(values), *values)
    if dtype == "f16":
        # via float32, as torch's float32 -> float16 cast (no double rounding surprise)
        v32 = struct.unpack("<%df" % len(values), struct.pack("<%df" % len(values), *values))
        return struct.pack("<%de" % len(values), *v32)
    if dtype == "f64":
        return struct.pack("<%dd" % len(values), *values)
    if dtype == "bf16":
        return struct.pack("<%dH" % len(values), *[_bf16_bits(v) for v in values])
    raise ValueError("unsupported dtype " + dtype)


def round_to_dtype(values, dtype):
    """Round a list of floats to the nearest value representable in dtype
    (via float32 first, as a float32 checkpoint cast by torch would be)."""
    v32 = _decode(_encode(values, "f32"), "f32")
    if dtype == "f32":
        return v32
    return _decode(_encode(v32, dtype), dtype)


# ----------------------------------------------------------------------------
# reader

class _StorageType:
    def __init__(self, name):
        self.name = name


class _StorageRef:
    def __init__(self, dtype, key, numel):
        self.dtype = dtype
        self.key = key
        self.numel = numel


class _TensorStub:
    def __init__(self, storage, offset, size, stride):
        self.storage = storage
        self.offset = offset
        self.size = tuple(size)
        self.stride = tuple(stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _TensorStub(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_TYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError("refusing global %s.%s" % (module, name))

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError("unexpected persistent id %r" % (pid,))
        _, stype, key, _location, numel = pid
        if not isinstance(stype, _StorageType):
            raise pickle.UnpicklingError("unexpected storage type %r" % (stype,))
        return _StorageRef(_STORAGE_TYPES[stype.name][0], str(key), int(numel))


def load_pth(path):
    """Load a torch.save zip checkpoint: OrderedDict name -> Tensor."""
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise ValueError("%s: expected exactly one data.pkl, found %r" % (path, pkl))
        prefix = pkl[0][: -len("data.pkl")]
        obj = _RestrictedUnpickler(io.BytesIO(z.read(pkl[0]))).load()
        if not isinstance(obj, dict):
            raise ValueError("%s: top-level object is not a dict" % path)
        cache = {}
        out = collections.OrderedDict()
        for name, t in obj.items():
            if not isinstance(t, _TensorStub):
                raise ValueError("%s: entry %r is not a tensor" % (path, name))
            st = t.storage
            if st.key not in cache:
                raw = z.read(prefix + "data/" + st.key)
                esize = {"f32": 4, "f16": 2, "bf16": 2, "f64": 8}[st.dtype]
                if len(raw) < st.numel * esize:
                    raise ValueError("%s: storage %s too short" % (path, st.key))
                cache[st.key] = _decode(raw[: st.numel * esize], st.dtype)
            flat = cache[st.key]
            out[name] = Tensor(t.size, st.dtype, _gather(flat, t.offset, t.size, t.stride))
    return out


def _gather(flat, offset, size, stride):
    n = 1
    for s in size:
        n *= s
    # contiguous fast path
    contig = True
    expect = 1
    for s, st in zip(reversed(size), reversed(stride)):
        if s != 1 and st != expect:
            contig = False
            break
        expect *= s
    if contig:
        return flat[offset: offset + n]
    idx = [offset]
    for s, st in zip(size, stride):
        idx = [i + j * st for i in idx for j in range(s)]
    return [flat[i] for i in idx]


# ----------------------------------------------------------------------------
# writer: pickle emitted opcode by opcode, the way torch's pickler lays it out

class _PickleEmitter:
    def __init__(self):
        self.buf = bytearray()
        self.memo = {}      # key -> memo index, for objects referenced again
        self.n_memo = 0     # every memoized object gets the next index

    def _put(self):
        i = self.n_memo
        self.n_memo += 1
        if i < 256:
            self.buf += b"q" + bytes([i])  # BINPUT
        else:
            self.buf += b"r" + struct.pack("<I", i)  # LONG_BINPUT
        return i

    def _get(self, i):
        if i < 256:
            self.buf += b"h" + bytes([i])  # BINGET
        else:
            self.buf += b"j" + struct.pack("<I", i)  # LONG_BINGET

    def memo_or(self, key, emit):
        if key in self.memo:
            self._get(self.memo[key])
        else:
            emit()
            self.memo[key] = self._put()

    def global_(self, module, name):
        def emit():
            self.buf += b"c" + module.encode() + b"\n" + name.encode() + b"\n"
        self.memo_or(("global", module, name), emit)

    def str_(self, s, share=False):
        def emit():
            b = s.encode("utf-8")
            self.buf += b"X" + struct.pack("<I", len(b)) + b
        if share:
            self.memo_or(("str", s), emit)
        else:
            emit()
            self._put()

    def int_(self, v):
        if 0 <= v < 256:
            self.buf += b"K" + bytes([v])
        elif 0 <= v < 65536:
            self.buf += b"M" + struct.pack("<H", v)
        elif -2 ** 31 <= v < 2 ** 31:
            self.buf += b"J" + struct.pack("<i", v)
        else:
            raise ValueError("integer too large for this writer")

    def int_tuple(self, vals):
        if len(vals) == 0:
            self.buf += b")"
            return
        if len(vals) > 3:
            self.buf += b"("
        for v in vals:
            self.int_(v)
        self.buf += {1: b"\x85", 2: b"\x86", 3: b"\x87"}.get(len(vals), b"t")
        self._put()


def _pickle_state_dict(entries):
    """entries: list of (name, storage_class_name, key, numel, shape)."""
    p = _PickleEmitter()
    p.buf += b"\x80\x02"  # PROTO 2
    p.global_("collections", "OrderedDict")
    p.buf += b")R"  # EMPTY_TUPLE REDUCE
    p._put()
    batch = 1000
    for start in range(0, len(entries), batch):
        chunk = entries[start: start + batch]
        if len(chunk) > 1:
            p.buf += b"("  # MARK
        for name, sclass, key, numel, shape in chunk:
            p.str_(name)
            p.global_("torch._utils", "_rebuild_tensor_v2")
            p.buf += b"("  # MARK (args tuple)
            # persistent id ('storage', torch.XStorage, key, 'cpu', numel)
            p.buf += b"("
            p.str_("storage", share=True)
            p.global_("torch", sclass)
            p.str_(key)
            p.str_("cpu", share=True)
            p.int_(numel)
            p.buf += b"t"
            p._put()
            p.buf += b"Q"  # BINPERSID
            p.int_(0)  # storage_offset
            p.int_tuple(list(shape))
            stride = []
            acc = 1
            for s in reversed(shape):
                stride.append(acc)
                acc *= s
            p.int_tuple(list(reversed(stride)))
            p.buf += b"\x89"  # NEWFALSE (requires_grad)
            p.global_("collections", "OrderedDict")  # backward_hooks
            p.buf += b")R"
            p._put()
            p.buf += b"t"  # TUPLE
            p._put()
            p.buf += b"R"  # REDUCE
            p._put()
        p.buf += b"u" if len(chunk) > 1 else b"s"  # SETITEMS / SETITEM
    p.buf += b"."  # STOP
    return bytes(p.buf)


def _zip_stored(path, records, align=64):
    """Write records [(name, bytes)] as a STORED zip, each entry's data
    aligned to `align` bytes using an 'FB' extra field in the local header."""
    out = bytearray()
    central = bytearray()
    for name, data in records:
        nb = name.encode("utf-8")
        offset = len(out)
        start = offset + 30 + len(nb) + 4
        pad = (-start) % align
        extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
        crc = zlib.crc32(data) & 0xFFFFFFFF
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21,
                           crc, len(data), len(data), len(nb), len(extra))
        out += nb + extra
        assert len(out) % align == 0
        out += data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0x21,
                               crc, len(data), len(data), len(nb), 0, 0, 0, 0, 0, offset)
        central += nb
    cd_off = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(records), len(records),
                       len(central), cd_off, 0)
    if len(out) >= 2 ** 32 or len(records) >= 65535:
        raise ValueError("file too large for this writer (no zip64)")
    with open(path, "wb") as f:
        f.write(out)


def save_pth(path, tensors, dtype="f32", prefix=None):
    """Write an OrderedDict/list of (name, (shape, flat values)) or name ->
    Tensor as a torch.save zip checkpoint, every tensor stored as `dtype`
    ('f32', 'f16' or 'bf16'), one storage per tensor.  Values are rounded to
    float32 first, then to dtype (like torch's casts of a float32 tensor)."""
    if prefix is None:
        prefix = os.path.splitext(os.path.basename(path))[0]
    items = tensors.items() if isinstance(tensors, dict) else tensors
    entries = []
    storages = []
    sclass = _DTYPE_TO_STORAGE[dtype]
    for i, (name, t) in enumerate(items):
        if isinstance(t, Tensor):
            shape, data = t.shape, t.data
        else:
            shape, data = t
        n = 1
        for s in shape:
            n *= s
        if len(data) != n:
            raise ValueError("%s: %d values for shape %r" % (name, len(data), shape))
        for v in data:
            if not math.isfinite(v):
                raise ValueError("%s: non-finite value" % name)
        key = str(i)
        entries.append((name, sclass, key, n, tuple(shape)))
        storages.append((key, _encode(data, dtype)))
    records = [(prefix + "/data.pkl", _pickle_state_dict(entries)),
               (prefix + "/byteorder", b"little")]
    for key, raw in sorted(storages, key=lambda kv: kv[0]):  # torch sorts keys as strings
        records.append((prefix + "/data/" + key, raw))
    records.append((prefix + "/version", b"3\n"))
    _zip_stored(path, records)


if __name__ == "__main__":
    import sys
    for p in sys.argv[1:]:
        sd = load_pth(p)
        print(p)
        for k, t in sd.items():
            print("  %-40s %-5s %s" % (k, t.dtype, list(t.shape)))
