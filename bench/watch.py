#!/usr/bin/env python3
"""Watcher benchmark: foldersync (default settings) side by side with lsyncd (default.rsync, delay 0).

  bench/watch.py [--files 200] [--burst 20000] [--where /dev/shm] [--idle 10] [-- extra foldersync args]

For each tool, on a fresh SOURCE/REPLICA pair in --where:
  latency  files of 4 KiB written into SOURCE one at a time; for each, the time from close() to
           the file appearing in REPLICA with its full size (polled every 0.5 ms); p50, p90 and p99.
  burst    a tree of --burst files (gen_tree.py, 200 dirs) copied into SOURCE with cp -a; the time
           the copy took, and the time from its start until REPLICA holds every file at full size.
  idle     CPU seconds (user + system, from /proc) the tool used over --idle seconds of no change
           (foldersync only: lsyncd's idle state is a blocked select, but it runs rsync per batch).
Installs lsyncd and rsync from Debian's packages if missing.
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import need, pct, size_of, wait_until  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
GEN = os.path.join(REPO, "..", "shared", "bench", "gen_tree.py")


def tree_sizes(root):
    out = {}
    for dp, _, fs in os.walk(root):
        for f in fs:
            p = os.path.join(dp, f)
            try:
                out[os.path.relpath(p, root)] = os.lstat(p).st_size
            except OSError:
                pass
    return out


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Tool:
    def __init__(self, name, work, fs_bin, extra):
        self.name, self.work = name, work
        self.src, self.dst = os.path.join(work, "src"), os.path.join(work, "dst")
        os.makedirs(self.src)
        os.makedirs(self.dst)
        with open(os.path.join(self.src, "ready"), "w") as f:
            f.write("x")
        if name == "foldersync":
            cmd = [fs_bin, self.src, self.dst, "-l", os.path.join(work, "fs.log")] + extra
        else:
            conf = os.path.join(work, "lsyncd.conf")
            with open(conf, "w") as f:
                f.write(f'''settings {{ logfile = "{work}/lsyncd.log", nodaemon = true }}
sync {{ default.rsync, source = "{self.src}", target = "{self.dst}", delay = 0,
        rsync = {{ archive = true }} }}
''')
            cmd = ["lsyncd", conf]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if wait_until(lambda: size_of(os.path.join(self.dst, "ready")) == 1, 60, 0.01) is None:
            raise SystemExit(f"{name}: initial sync did not finish")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def latency(tool, n):
    out = []
    payload = os.urandom(4096)
    for i in range(n):
        name = f"lat{i:04d}.bin"
        with open(os.path.join(tool.src, name), "wb") as f:
            f.write(payload)
        t0 = time.perf_counter()
        t1 = wait_until(lambda: size_of(os.path.join(tool.dst, name)) == 4096, 10)
        out.append((t1 - t0) * 1000 if t1 else float("inf"))
        time.sleep(0.02)
    return out


def burst(tool, tree):
    target = os.path.join(tool.src, "burst")
    want = tree_sizes(tree)
    t0 = time.perf_counter()
    subprocess.run(["cp", "-a", tree, target], check=True)
    copy = time.perf_counter() - t0
    dst = os.path.join(tool.dst, "burst")
    done = wait_until(lambda: tree_sizes(dst) == want, 300, 0.05)
    return copy, (done - t0) if done else float("inf")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--burst", type=int, default=20000)
    ap.add_argument("--where", default="/dev/shm")
    ap.add_argument("--idle", type=float, default=10)
    ap.add_argument("--tools", default="foldersync,lsyncd")
    ap.add_argument("--binary", help="another foldersync binary (an earlier build) instead of this tree's")
    ap.add_argument("extra", nargs="*", help="extra foldersync arguments (after --)")
    a = ap.parse_args()
    need("rsync", "rsync")
    need("lsyncd", "lsyncd")
    if a.binary:
        fs_bin = os.path.abspath(a.binary)
    else:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
        fs_bin = os.path.join(REPO, "target", "release", "foldersync")

    base = tempfile.mkdtemp(prefix="fs-watch-bench-", dir=a.where)
    try:
        tree = os.path.join(base, "tree")
        subprocess.run([sys.executable, GEN, "create", tree, "--files", str(a.burst), "--dirs", "200"], check=True)
        rows = []
        for name in a.tools.split(","):
            work = os.path.join(base, name)
            os.makedirs(work)
            tool = Tool(name, work, fs_bin, a.extra)
            try:
                idle = None
                if name == "foldersync" and a.idle > 0:
                    time.sleep(1)
                    c0 = cpu_seconds(tool.proc.pid)
                    time.sleep(a.idle)
                    idle = cpu_seconds(tool.proc.pid) - c0
                lat = latency(tool, a.files)
                copy, conv = burst(tool, tree)
            finally:
                tool.stop()
            rows.append((name, pct(lat, 50), pct(lat, 90), pct(lat, 99), copy, conv, idle))
        print(f"{a.files} files of 4 KiB written one at a time; burst of {a.burst} files; in {a.where}; "
              f"foldersync args: {' '.join(a.extra) or '(defaults)'}")
        print(f"{'tool':<12} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'cp -a s':>8} {'converged s':>12} {'ratio':>6} {'idle CPU s':>11}")
        for name, p50, p90, p99, copy, conv, idle in rows:
            idle_s = f"{idle:.3f}/{a.idle:.0f}s" if idle is not None else "-"
            print(f"{name:<12} {p50:>8.1f} {p90:>8.1f} {p99:>8.1f} {copy:>8.2f} {conv:>12.2f} {conv / copy:>6.1f} {idle_s:>11}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
