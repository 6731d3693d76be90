#!/usr/bin/env python3
"""Renames benchmark: what it costs to prove a rename (its bytes compared) against copying what
was renamed, and against trusting size and mtime as earlier builds did.

  bench/renames.py [--where /dev/shm] [--runs 3] [--size-mib 1024] [--files 10000]
                   [--compare OTHER_BINARY]

The tree: one file of --size-mib MiB of random bytes and a directory of --files small files.
Cases, each timed (medians of --runs, interleaved):
  copy       a first pass into an empty REPLICA: both are copied
  offline    both renamed while foldersync was stopped, then one pass: the file is proven by
             comparing its bytes (REPLICA's old name against SOURCE's new one), the directory is
             matched by the names inside it and its files by size, mtime and ctime
  watched    the file renamed while foldersync watches: the time until REPLICA has it under the
             new name (proven the same way, on a copy worker)
With --compare, the same for another binary (an earlier build renames on size and mtime alone).
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import wait_until  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def build(src, size_mib, files):
    with open(os.path.join(src, "vm.img"), "wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(1 << 20))
    photos = os.path.join(src, "photos")
    os.makedirs(photos)
    for i in range(files):
        with open(os.path.join(photos, f"p{i:05d}.jpg"), "wb") as f:
            f.write(os.urandom(512))


def once(binary, src, dst, log):
    t = time.perf_counter()
    subprocess.run([binary, src, dst, "-l", log, "-q", "--once"], check=True)
    return time.perf_counter() - t


def one_round(binary, where, size_mib, files):
    work = tempfile.mkdtemp(prefix="fs-renames-", dir=where)
    try:
        src, dst, log = (os.path.join(work, n) for n in ("src", "dst", "fs.log"))
        os.makedirs(src)
        build(src, size_mib, files)
        copy = once(binary, src, dst, log)
        os.rename(os.path.join(src, "vm.img"), os.path.join(src, "vm-renamed.img"))
        os.makedirs(os.path.join(src, "archive"))
        os.rename(os.path.join(src, "photos"), os.path.join(src, "archive", "2024"))
        offline = once(binary, src, dst, log)
        renamed = os.path.exists(os.path.join(dst, "vm-renamed.img"))
        proc = subprocess.Popen([binary, src, dst, "-l", log, "-q", "-i", "1h"],
                                stderr=subprocess.DEVNULL)
        try:
            time.sleep(1)
            t = time.perf_counter()
            os.rename(os.path.join(src, "vm-renamed.img"), os.path.join(src, "vm-again.img"))
            when = wait_until(lambda: os.path.exists(os.path.join(dst, "vm-again.img")), 120)
            watched = (when - t) if when else float("nan")
        finally:
            proc.terminate()
            proc.wait()
        return copy, offline, watched, renamed
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--where", default="/dev/shm")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--compare")
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    binaries = [("foldersync", os.path.join(REPO, "target", "release", "foldersync"))]
    if a.compare:
        binaries.append(("compared", a.compare))
    results = {name: [] for name, _ in binaries}
    for _ in range(a.runs):
        for name, binary in binaries:
            results[name].append(one_round(binary, a.where, a.size_mib, a.files))
    print(f"{a.size_mib} MiB file + {a.files:,}-file directory; medians of {a.runs} runs, seconds")
    print(f"{'binary':<11} {'copy':>8} {'offline':>8} {'ratio':>6} {'watched':>8}  renamed")
    for name, rounds in results.items():
        med = [statistics.median(r[i] for r in rounds) for i in range(3)]
        print(f"{name:<11} {med[0]:>8.3f} {med[1]:>8.3f} {med[1] / med[0]:>6.2f} {med[2]:>8.3f}  "
              f"{all(r[3] for r in rounds)}")


if __name__ == "__main__":
    main()
