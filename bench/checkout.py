#!/usr/bin/env python3
"""Checkout benchmark: how soon REPLICA matches SOURCE after a `git checkout` in SOURCE returns,
for foldersync (default settings, watching) and lsyncd (default.rsync, delay 0), side by side.

  bench/checkout.py [--repo PATH] [--steps 40] [--where /dev/shm] [--compare OTHER_BINARY]
                    [--no-lsyncd] [-- extra foldersync args]

SOURCE is a work tree cloned (locally, no network) from --repo (default: this repository; any
git repository works, ripgrep's history is the usual one). The checkout walks --steps commits
spread evenly over the repository's first-parent history, oldest first, then back to the newest:
each step changes, adds and removes files as a developer's checkout does. For each step, the
time from the checkout's return until REPLICA holds exactly SOURCE's files (names, sizes and
mtimes, polled every millisecond), then the median, p90 and max. The `.git` directory is
excluded on both sides, as a mirror of a work tree would. Installs lsyncd and rsync if missing.
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import need, pct, wait_until  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def signature(root):
    """Every file and directory below root except .git: path -> (kind, size, mtime)."""
    out = {}
    for dp, dirs, files in os.walk(root):
        if dp == root and ".git" in dirs:
            dirs.remove(".git")
        rel = os.path.relpath(dp, root)
        for name in dirs + files:
            p = os.path.join(dp, name)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            kind = "d" if name in dirs else "f"
            out[os.path.join(rel, name)] = (kind, st.st_size if kind == "f" else 0,
                                            st.st_mtime_ns if kind == "f" else 0)
    return out


def commits(repo, steps):
    """`steps` commits spread over the first-parent history, oldest first."""
    out = subprocess.run(["git", "-C", repo, "rev-list", "--first-parent", "--reverse", "HEAD"],
                         check=True, capture_output=True, text=True).stdout.split()
    if len(out) <= steps:
        return out
    return [out[round(i * (len(out) - 1) / (steps - 1))] for i in range(steps)]


class Tool:
    def __init__(self, name, work):
        self.name, self.work = name, work
        self.src, self.dst = os.path.join(work, "src"), os.path.join(work, "dst")
        self.proc = None

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None


class Foldersync(Tool):
    def __init__(self, name, work, binary, extra):
        super().__init__(name, work)
        self.binary, self.extra = binary, extra

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, self.src, self.dst, "-l", os.path.join(self.work, "fs.log"), "-q",
             "-i", "1h", "--exclude", "/.git", *self.extra], stderr=subprocess.DEVNULL)


class Lsyncd(Tool):
    def start(self):
        conf = os.path.join(self.work, "lsyncd.conf")
        with open(conf, "w") as f:
            f.write(f"""settings {{ nodaemon = true, logfile = "{self.work}/lsyncd.log" }}
sync {{ default.rsync, source = "{self.src}", target = "{self.dst}", delay = 0,
       exclude = {{ "/.git" }}, rsync = {{ archive = true }} }}
""")
        self.proc = subprocess.Popen(["lsyncd", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)


def run(tool, repo, steps):
    subprocess.run(["git", "clone", "-q", "--no-checkout", repo, tool.src], check=True)
    walk = commits(tool.src, steps)
    subprocess.run(["git", "-C", tool.src, "checkout", "-q", walk[0]], check=True)
    tool.start()
    if wait_until(lambda: signature(tool.src) == signature(tool.dst), 120, step=0.05) is None:
        raise SystemExit(f"{tool.name}: the first pass did not converge")
    times = []
    for rev in walk[1:] + [walk[0]]:
        subprocess.run(["git", "-C", tool.src, "checkout", "-q", rev], check=True)
        done = time.perf_counter()
        want = signature(tool.src)
        when = wait_until(lambda: signature(tool.dst) == want, 60, step=0.001)
        if when is None:
            raise SystemExit(f"{tool.name}: no convergence after checking out {rev}")
        times.append(when - done)
    tool.stop()
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", default=REPO)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--where", default="/dev/shm")
    ap.add_argument("--compare", help="another foldersync binary, run beside this one")
    ap.add_argument("--no-lsyncd", action="store_true")
    ap.add_argument("extra", nargs="*")
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    tools = [("foldersync", lambda w: Foldersync("foldersync", w, os.path.join(REPO, "target", "release", "foldersync"), a.extra))]
    if a.compare:
        tools.append(("compared", lambda w: Foldersync("compared", w, a.compare, a.extra)))
    if not a.no_lsyncd:
        need("lsyncd", "lsyncd")
        need("rsync", "rsync")
        tools.append(("lsyncd", lambda w: Lsyncd("lsyncd", w)))
    print(f"{'tool':<11} {'steps':>5} {'median':>9} {'p90':>9} {'max':>9}   (seconds from checkout to match)")
    for name, make in tools:
        work = tempfile.mkdtemp(prefix="fs-checkout-", dir=a.where)
        tool = make(work)
        try:
            t = run(tool, a.repo, a.steps)
            print(f"{name:<11} {len(t):>5} {statistics.median(t):>9.3f} {pct(t, 90):>9.3f} {max(t):>9.3f}")
            sys.stdout.flush()
        finally:
            tool.stop()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
