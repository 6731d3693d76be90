#!/usr/bin/env python3
"""Waste benchmark: bytes foldersync writes into REPLICA against the bytes that changed in
SOURCE, read from its status file (`bytes_written`), for each case of the waste issue.

  bench/waste.py [--where /dev/shm] [--only NAME[,NAME]] [-- extra foldersync args]

Cases (each on a fresh SOURCE/REPLICA pair, foldersync watching unless said otherwise):
  burst      `cp -r` of a directory holding a 200 MB file and 2,000 small files into SOURCE
  mkdir      `mkdir d; echo > d/x`, 30 times
  append     a file appended to every 2 ms for 10 s by a writer that keeps it open, then closed
  reopen     a file appended to every 2 ms for 10 s, opened and closed for each append (`>>`)
  chain      `mv big big2; sleep 0.07; mv big2 sub/big3` (20 MiB), and the same within one window
  offline    renames made while foldersync was stopped: a 1 GiB file and a 10,000-file
             directory, then a start (one pass)
For each: the bytes that changed, the bytes written, their ratio (goal: at most 1.05), and the
copies the log shows.
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def wait_until(cond, timeout, step=0.01):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(step)
    return False


class Mirror:
    def __init__(self, fs_bin, work, extra, watch=True):
        self.work = work
        self.src, self.dst = os.path.join(work, "src"), os.path.join(work, "dst")
        self.status = os.path.join(work, "status.json")
        self.log = os.path.join(work, "fs.log")
        self.fs_bin, self.extra = fs_bin, extra
        os.makedirs(self.src, exist_ok=True)
        with open(os.path.join(self.src, "ready"), "w") as f:
            f.write("x")
        self.proc = None

    def start(self, once=False):
        cmd = [self.fs_bin, self.src, self.dst, "-l", self.log, "--status-file", self.status,
               "-i", "1h", *self.extra]
        if once:
            cmd.append("--once")
            subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
            return
        self.proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.written() is not None and os.path.exists(os.path.join(self.dst, "ready")), 60)

    def written(self):
        try:
            with open(self.status) as f:
                return json.load(f).get("bytes_written")
        except (OSError, ValueError):
            return None

    def settle(self, cond, timeout=120):
        """Waits for cond and for the status file to stop moving."""
        wait_until(cond, timeout, 0.05)
        last, still = None, 0
        while still < 6:
            time.sleep(0.25)
            now = self.written()
            still = still + 1 if now == last else 0
            last = now
        return last

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def mark(self):
        """Counts copies in the log from here on."""
        self.log_from = os.path.getsize(self.log)

    def copies(self):
        with open(self.log) as f:
            f.seek(getattr(self, "log_from", 0))
            text = f.read()
        return text.count("] copied ") + text.count("] updated ") - text.count("] updated attributes")


def same(a, b):
    return subprocess.run(["diff", "-rq", a, b], stdout=subprocess.DEVNULL).returncode == 0


def case_burst(m, base):
    tree = os.path.join(base, "burst-tree")
    os.makedirs(os.path.join(tree, "small"))
    with open(os.path.join(tree, "big"), "wb") as f:
        f.write(os.urandom(1 << 20) * 200)
    for i in range(2000):
        with open(os.path.join(tree, "small", f"s{i}"), "wb") as f:
            f.write(os.urandom(2048))
    changed = 200 * (1 << 20) + 2000 * 2048
    m.mark()
    before = m.written()
    subprocess.run(["cp", "-r", tree, os.path.join(m.src, "newdir")], check=True)
    after = m.settle(lambda: same(m.src, m.dst))
    return changed, after - before


def case_mkdir(m, base):
    m.mark()
    before = m.written()
    for i in range(30):
        d = os.path.join(m.src, f"d{i}")
        os.mkdir(d)
        with open(os.path.join(d, "x"), "w") as f:
            f.write("line of text\n")
    after = m.settle(lambda: same(m.src, m.dst))
    return 30 * 13, after - before


def append(m, reopen):
    path = os.path.join(m.src, "growing.log")
    line = os.urandom(100)
    m.mark()
    before = m.written()
    end = time.time() + 10
    f = None if reopen else open(path, "ab", buffering=0)
    while time.time() < end:
        if reopen:
            with open(path, "ab", buffering=0) as g:
                g.write(line)
        else:
            f.write(line)
        time.sleep(0.002)
    if f:
        f.close()
    after = m.settle(lambda: same(m.src, m.dst))
    return os.path.getsize(path), after - before


def case_chain(m, base):
    big = os.path.join(m.src, "big.bin")
    with open(big, "wb") as f:
        f.write(os.urandom(20 << 20))
    os.makedirs(os.path.join(m.src, "sub"))
    m.settle(lambda: same(m.src, m.dst))
    m.mark()
    before = m.written()
    os.rename(big, os.path.join(m.src, "big-renamed.bin"))
    time.sleep(0.07)
    os.rename(os.path.join(m.src, "big-renamed.bin"), os.path.join(m.src, "sub", "big-moved.bin"))
    m.settle(lambda: same(m.src, m.dst))
    os.rename(os.path.join(m.src, "sub", "big-moved.bin"), os.path.join(m.src, "x.bin"))
    os.rename(os.path.join(m.src, "x.bin"), os.path.join(m.src, "sub", "y.bin"))
    after = m.settle(lambda: same(m.src, m.dst))
    return 0, after - before


def case_offline(m, base):
    big = os.path.join(m.src, "vm.img")
    with open(big, "wb") as f:
        for _ in range(1024):
            f.write(os.urandom(1 << 20))
    photos = os.path.join(m.src, "photos", "2024")
    os.makedirs(photos)
    for i in range(10000):
        with open(os.path.join(photos, f"p{i:05d}.jpg"), "wb") as f:
            f.write(os.urandom(512))
    m.stop()
    m.start(once=True)
    os.rename(big, os.path.join(m.src, "vm-renamed.img"))
    os.makedirs(os.path.join(m.src, "archive"))
    os.rename(photos, os.path.join(m.src, "archive", "2024"))
    m.mark()
    m.start(once=True)
    assert same(m.src, m.dst), "not mirrored"
    # A --once run keeps its own count: all it wrote is what this start wrote.
    return 0, m.written()


CASES = {
    "burst": case_burst,
    "mkdir": case_mkdir,
    "append": lambda m, b: append(m, False),
    "reopen": lambda m, b: append(m, True),
    "chain": case_chain,
    "offline": case_offline,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--where", default="/dev/shm")
    ap.add_argument("--only", default=",".join(CASES))
    ap.add_argument("extra", nargs="*")
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    fs_bin = os.path.join(REPO, "target", "release", "foldersync")
    print(f"{'case':<8} {'changed':>14} {'written':>14} {'ratio':>7} {'copies':>7}")
    for name in a.only.split(","):
        base = tempfile.mkdtemp(prefix=f"fs-waste-{name}-", dir=a.where)
        m = Mirror(fs_bin, base, a.extra)
        try:
            m.start()
            changed, written = CASES[name](m, base)
            ratio = written / changed if changed else (0.0 if written == 0 else float("inf"))
            print(f"{name:<8} {changed:>14,} {written:>14,} {ratio:>7.2f} {m.copies():>7}")
            sys.stdout.flush()
        finally:
            m.stop()
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
