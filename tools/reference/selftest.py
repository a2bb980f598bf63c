"""Self-test of pth_io and of the committed fixtures (stdlib only, ~10 s).

    python3 tools/reference/selftest.py [--shared /work/shared]

1. Writer/reader round trip in f32/f16/bf16, with > 256 tensors (LONG_BINPUT
   memo) and > 1000 tensors (several SETITEMS batches), 1-D..3-D shapes.
2. With shared/ present: every torch-written checkpoint in
   shared/models/pth/ is read; for the ones torch pickled as an OrderedDict our
   pickle of the same tensors must be byte-identical to torch's data.pkl; the
   bf16/fp16 copies must equal the float32 weights rounded by round_to_dtype.
3. make_fixtures.py, run into a temporary folder, must reproduce
   tests/fixtures/ byte for byte.
"""

import argparse
import filecmp
import os
import random
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pth_io  # noqa: E402

SCLASS = {"f32": "FloatStorage", "f16": "HalfStorage", "bf16": "BFloat16Storage"}
failures = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        failures.append(msg)


def roundtrip():
    r = random.Random(7)
    shapes = [(3,), (2, 5), (1, 1, 4), (2, 3, 2), (7,)]
    tensors = []
    for i in range(1300):
        s = shapes[i % len(shapes)]
        n = 1
        for d in s:
            n *= d
        tensors.append(("blocks.%d.t" % i, (s, [r.gauss(0, 3) for _ in range(n)])))
    with tempfile.TemporaryDirectory() as td:
        for dt in pth_io.DTYPES:
            p = os.path.join(td, "rt-%s.pth" % dt)
            pth_io.save_pth(p, tensors, dtype=dt)
            sd = pth_io.load_pth(p)
            ok = list(sd.keys()) == [k for k, _ in tensors]
            for k, (s, v) in tensors:
                t = sd[k]
                ok = ok and t.shape == s and t.dtype == dt and t.data == pth_io.round_to_dtype(v, dt)
            with zipfile.ZipFile(p) as z:
                infos = z.infolist()
                raw = open(p, "rb").read()
                aligned = all((i.header_offset + 30 + len(i.filename.encode()) +
                               int.from_bytes(raw[i.header_offset + 28:i.header_offset + 30], "little")) % 64 == 0
                              for i in infos)
                ok = ok and aligned and all(i.compress_type == zipfile.ZIP_STORED for i in infos)
                ok = ok and z.testzip() is None
            check(ok, "round trip %s, %d tensors, stored + 64-byte aligned" % (dt, len(tensors)))


def shared_checks(shared):
    d = os.path.join(shared, "models", "pth")
    if not os.path.isdir(d):
        print("skip shared checks: %s not found" % d)
        return
    for f in sorted(os.listdir(d)):
        if not f.endswith(".pth"):
            continue
        p = os.path.join(d, f)
        sd = pth_io.load_pth(p)
        with zipfile.ZipFile(p) as z:
            pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
            theirs = z.read(pkl)
        if theirs[2:3] == b"c":  # OrderedDict at top level, as torch.save of a state_dict
            entries = [(k, SCLASS[t.dtype], str(i), t.numel(), t.shape) for i, (k, t) in enumerate(sd.items())]
            ours = pth_io._pickle_state_dict(entries)
            check(ours == theirs, "%s: our data.pkl is byte-identical to torch's" % f)
        for suf, dt in (("-bf16", "bf16"), ("-fp16", "f16")):
            if f.endswith(suf + ".pth"):
                ref = pth_io.load_pth(p.replace(suf + ".pth", ".pth"))
                ok = all(sd[k].data == pth_io.round_to_dtype(ref[k].data, dt) for k in ref)
                check(ok, "%s: equals the float32 weights rounded to %s by round_to_dtype" % (f, dt))


def fixtures_reproduce():
    fx = os.path.normpath(os.path.join(HERE, "..", "..", "tests", "fixtures"))
    with tempfile.TemporaryDirectory() as td:
        subprocess.run([sys.executable, os.path.join(HERE, "make_fixtures.py"), "--out", td],
                       check=True, stdout=subprocess.DEVNULL)
        names = sorted(os.listdir(td))
        same = names == sorted(os.listdir(fx))
        _, mismatch, errors = filecmp.cmpfiles(td, fx, names, shallow=False)
        check(same and not mismatch and not errors,
              "make_fixtures.py reproduces tests/fixtures byte for byte %s" % (mismatch + errors or ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="/work/shared")
    a = ap.parse_args()
    roundtrip()
    shared_checks(a.shared)
    fixtures_reproduce()
    print("SELFTEST OK" if not failures else "SELFTEST FAILED: %d" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
