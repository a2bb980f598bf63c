#!/usr/bin/env python3
"""Build the byte-level training corpus for the default model from an installed Debian package.

Corpus: the reStructuredText sources of the Python 3.11 documentation, as installed by the
Debian package `python3.11-doc` (licence: PSF-2.0, see /usr/share/doc/python3.11-doc/copyright):

    apt-get install -y python3.11-doc
    python3 tools/train/prepare_data.py --out data/

Files are taken in sorted order of their path below the source folder. File number n (0-based)
goes to
    val   if n % 20 == 0   (held-out split, reported bits per byte)
    dev   if n % 20 == 10  (used during training only to pick the best checkpoint)
    train otherwise.
Each split is the concatenation of its files' bytes, each file followed by one extra b"\\n".
The script prints the sha256 of each output file; models/README.md records them.
"""
import argparse
import hashlib
import os
import sys

DEFAULT_SRC = "/usr/share/doc/python3.11/html/_sources"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", default=DEFAULT_SRC, help="folder of .txt sources (default: %(default)s)")
    p.add_argument("--out", required=True, help="output folder for train.bin, dev.bin, val.bin")
    args = p.parse_args()

    if not os.path.isdir(args.src):
        sys.exit(f"{args.src} not found: apt-get install python3.11-doc")
    files = []
    for root, _, names in os.walk(args.src):
        for name in names:
            if name.endswith(".txt"):
                files.append(os.path.relpath(os.path.join(root, name), args.src))
    files.sort()

    splits = {"train": [], "dev": [], "val": []}
    for n, rel in enumerate(files):
        with open(os.path.join(args.src, rel), "rb") as f:
            data = f.read() + b"\n"
        split = "val" if n % 20 == 0 else "dev" if n % 20 == 10 else "train"
        splits[split].append(data)

    os.makedirs(args.out, exist_ok=True)
    print(f"{len(files)} files from {args.src}")
    for name, parts in splits.items():
        blob = b"".join(parts)
        path = os.path.join(args.out, f"{name}.bin")
        with open(path, "wb") as f:
            f.write(blob)
        print(f"{name}.bin  files {len(parts):4d}  bytes {len(blob):9d}  sha256 {hashlib.sha256(blob).hexdigest()}")


if __name__ == "__main__":
    main()
