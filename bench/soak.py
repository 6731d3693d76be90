#!/usr/bin/env python3
"""Soak test: foldersync runs for --minutes while a seeded generator changes SOURCE at --rate
operations a second. Every --sample seconds it records the mirror's RSS and open file
descriptors; at the end it waits for quiet and checks that REPLICA equals SOURCE (kinds, sizes,
bytes, modes, mtimes, link targets).

  bench/soak.py [--minutes 10] [--rate 20] [--seed 1] [--where DIR] [--interval 2m]

Not part of CI. Prints the samples at start and end, their maxima, and the verdict.
"""
import argparse, hashlib, os, random, shutil, signal, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
GEN = os.path.join(REPO, "..", "shared", "bench", "gen_tree.py")
NAMES = ["a", "b", "c", "d", "e", "f", "g", "h", "notes.txt", "data.bin", "ü"]


def sample(pid):
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds


def describe(root):
    out = []
    for dp, dns, fns in os.walk(root):
        dns.sort()
        for name in sorted(dns + fns):
            p = os.path.join(dp, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out.append(("l", rel, os.readlink(p)))
            elif os.path.isdir(p):
                out.append(("d", rel, st.st_mode & 0o7777, st.st_mtime_ns))
            else:
                with open(p, "rb") as f:
                    digest = hashlib.sha1(f.read()).hexdigest()
                out.append(("f", rel, st.st_mode & 0o7777, st.st_mtime_ns, st.st_size, digest))
    return out


class Generator:
    def __init__(self, src, outside, seed):
        self.src, self.outside, self.rng = src, outside, random.Random(seed)
        self.applied = 0

    def entries(self):
        files, dirs = [], [""]
        for dp, dns, fns in os.walk(self.src):
            rel = os.path.relpath(dp, self.src)
            rel = "" if rel == "." else rel
            dirs += [os.path.join(rel, d) for d in dns]
            files += [os.path.join(rel, f) for f in fns]
        return files, dirs

    def step(self):
        r = self.rng
        files, dirs = self.entries()
        p = lambda rel: os.path.join(self.src, rel)
        new = os.path.join(r.choice(dirs), r.choice(NAMES))
        op = r.randrange(10)
        try:
            if op <= 2 or not files:
                with open(p(new), "wb") as f:
                    f.write(r.randbytes(r.choice([0, 100, 4096, 65536, 1 << 20])))
            elif op == 3:
                with open(p(r.choice(files)), "ab") as f:
                    f.write(r.randbytes(r.randrange(1, 10000)))
            elif op == 4:
                os.remove(p(r.choice(files)))
            elif op == 5 and len(dirs) < 60:
                os.mkdir(p(new))
            elif op == 6 and len(dirs) > 1:
                shutil.rmtree(p(r.choice(dirs[1:])))
            elif op == 7:
                os.rename(p(r.choice(files)), p(new))
            elif op == 8 and len(dirs) > 1:
                d = r.choice(dirs[1:])
                if not new.startswith(d + os.sep):
                    os.rename(p(d), p(new))
            else:
                tmp = p(".lnk%d" % r.randrange(1 << 30))
                os.symlink(r.choice(NAMES), tmp)
                os.rename(tmp, p(new))
            self.applied += 1
        except OSError:
            pass  # an operation the tree's current shape made impossible


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--rate", type=float, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--where", default=os.path.join(REPO, "target"))
    ap.add_argument("--interval", default="2m")
    ap.add_argument("--sample", type=float, default=5)
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    fs_bin = os.path.join(REPO, "target", "release", "foldersync")
    work = tempfile.mkdtemp(prefix="fs-soak-", dir=a.where)
    try:
        src, rep, outside = (os.path.join(work, n) for n in ("src", "rep", "outside"))
        os.mkdir(outside)
        subprocess.run([sys.executable, GEN, "create", src, "--files", "2000", "--dirs", "40"], check=True)
        log = os.path.join(work, "soak.log")
        proc = subprocess.Popen([fs_bin, src, rep, "-l", log, "-i", a.interval, "--allow-empty-source"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while "pass finished" not in open(log).read() if os.path.exists(log) else True:
            time.sleep(0.1)
        gen = Generator(src, outside, a.seed)
        samples = [(0.0,) + sample(proc.pid)]
        start = time.time()
        next_sample = start + a.sample
        end = start + a.minutes * 60
        period = 1.0 / a.rate
        while time.time() < end:
            gen.step()
            now = time.time()
            if now >= next_sample:
                samples.append((now - start,) + sample(proc.pid))
                next_sample += a.sample
            time.sleep(max(0.0, period - (time.time() - now)))
        quiet_from = time.time()
        ok = False
        while time.time() - quiet_from < 120:
            if describe(src) == describe(rep):
                ok = True
                break
            time.sleep(1)
        converged_after = time.time() - quiet_from
        samples.append((time.time() - start,) + sample(proc.pid))
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(10)
        text = open(log).read()
        print(f"soak: {a.minutes:g} min at {a.rate:g} ops/s, seed {a.seed}, interval {a.interval}, in {a.where}")
        print(f"operations applied: {gen.applied}; passes: {text.count('pass finished')}; "
              f"errors logged: {text.count('[ERROR]')}")
        print(f"RSS (KiB) start {samples[0][1]}, end {samples[-1][1]}, max {max(s[1] for s in samples)}")
        print(f"open fds start {samples[0][2]}, end {samples[-1][2]}, max {max(s[2] for s in samples)}")
        print(f"REPLICA equals SOURCE: {'yes' if ok else 'NO'} ({converged_after:.1f} s after the last change); "
              f"exit status {code}")
        sys.exit(0 if ok and code == 0 else 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
