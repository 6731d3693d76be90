#!/usr/bin/env python3
"""Performance benchmark: `foldersync --once` side by side with `cp -a`, `rsync -a --delete` and
`rclone sync`, interleaved (each round runs every tool once, in rotating order, so drift in the
machine's speed hits all alike). Prints medians, each tool's time relative to foldersync, and
peak RSS (from GNU time, per process).

  bench/perf.py [--where /dev/shm] [--runs 5] [--million] [--only NAME[,NAME]] [--fs-args "..."]
                [--compare OTHER_FOLDERSYNC_BINARY]

Scenarios (trees from ../shared/bench/gen_tree.py):
  small     initial copy of 20,000 files of 0-16 KiB in 200 directories
  huge      initial copy of one 1 GiB file
  large     initial copy of 100 files of 10 MiB
  same20k   unchanged re-run, 20,000 files
  same200k  unchanged re-run, 200,000 empty files in 2,000 directories
  mutated   re-run after `gen_tree.py mutate --modify 1 --delete 1 --add 200 --rename 1`
  rss       peak RSS of an unchanged foldersync pass at 20,000 and 200,000 files
            (and 1,000,000 with --million; building that tree takes minutes)
  logcost   the small initial copy with per-file log lines and without (-q --log-level warn)
  fsync     the small and the large initial copy with --fsync and without, beside rsync --fsync
            (meant for a disk: --where /some/disk/dir)
Installs rsync and rclone from Debian's packages if missing. Timing is done here, not with
hyperfine, because hyperfine cannot interleave different commands.
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
GEN = os.path.join(REPO, "..", "shared", "bench", "gen_tree.py")


def need(tool, package):
    if not shutil.which(tool):
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True)


RSS_FILE = os.path.join(tempfile.gettempdir(), "fs-perf-rss.txt")


def run(cmd):
    """Runs cmd; returns (seconds, peak RSS in KiB, CPU seconds: user + system). The RSS and CPU
    come from GNU time, whose child is tiny before it execs the tool (a child forked from Python
    would count Python's memory)."""
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", RSS_FILE, *cmd],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    took = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"{cmd[0]} exited {p.returncode}: {' '.join(cmd)}")
    with open(RSS_FILE) as f:
        user, system, peak = f.read().split()[-3:]
        return took, int(peak), float(user) + float(system)


def gen(*args):
    subprocess.run([sys.executable, GEN, *map(str, args)], check=True, stdout=subprocess.DEVNULL)


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)


def cp_tree(src, dst):
    shutil.rmtree(dst, ignore_errors=True)
    subprocess.run(["cp", "-a", src, dst], check=True)


class Bench:
    def __init__(self, a, work, fs_bin):
        self.a, self.work, self.fs = a, work, fs_bin
        self.log = os.path.join(work, "fs.log")
        self.rows = []

    def tools(self, with_cp):
        fs_args = self.a.fs_args.split()
        t = {
            # Each run mirrors into a fresh copy of a replica: a directory this foldersync never
            # mirrored into, which it would otherwise survey and, with removals, refuse.
            "foldersync": lambda s, d: [self.fs, "--once", "--allow-empty-source", "--adopt-replica", "-l", self.log, *fs_args, s, d],
            "rsync -a --delete": lambda s, d: ["rsync", "-a", "--delete", s + "/", d + "/"],
            "rclone sync": lambda s, d: ["rclone", "sync", "--local-no-check-updated", "--links", s, d],
        }
        if self.a.compare:
            t["foldersync (compare)"] = lambda s, d: [self.a.compare, "--once", "--allow-empty-source", "-l", self.log, *fs_args, s, d]
        if with_cp:
            t["cp -a"] = lambda s, d: ["cp", "-a", s + "/.", d]
        return t

    def rounds(self, title, tools, prepare, src):
        """Each round: for each tool (rotating), prepare() the replica, then time the tool."""
        times = {n: [] for n in tools}
        rss = {n: [] for n in tools}
        cpu = {n: [] for n in tools}
        names = list(tools)
        dst = os.path.join(self.work, "dst")
        for r in range(self.a.runs):
            for name in names[r % len(names):] + names[:r % len(names)]:
                prepare(dst)
                took, peak, used = run(tools[name](src, dst))
                times[name].append(took)
                rss[name].append(peak)
                cpu[name].append(used)
        self.report(title, times, rss, cpu)

    def report(self, title, times, rss, cpu):
        base = statistics.median(times["foldersync"])
        print(f"\n{title}")
        print(f"  {'tool':<20} {'median s':>9} {'foldersync/tool':>16} {'CPU s':>7} {'peak RSS MiB':>13}")
        for name in times:
            med = statistics.median(times[name])
            print(f"  {name:<20} {med:>9.3f} {base / med:>16.2f} {statistics.median(cpu[name]):>7.2f} "
                  f"{max(rss[name]) / 1024:>13.1f}")
        sys.stdout.flush()

    def initial(self, title, src):
        self.rounds(title, self.tools(True), fresh, src)

    def unchanged(self, title, src):
        def prepare(dst):
            if not os.path.isdir(dst) or not os.listdir(dst):
                fresh(dst)
                run(self.tools(False)["foldersync"](src, dst))
        shutil.rmtree(os.path.join(self.work, "dst"), ignore_errors=True)
        self.rounds(title, self.tools(False), prepare, src)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--where", default="/dev/shm")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--million", action="store_true")
    ap.add_argument("--only", default="small,huge,large,same20k,same200k,mutated,rss,logcost",
                    help="comma-separated scenarios; fsync is not in the default set")
    ap.add_argument("--fs-args", default="", help="extra foldersync arguments")
    ap.add_argument("--compare", default="", help="another foldersync binary (an earlier build), run side by side")
    a = ap.parse_args()
    need("rsync", "rsync")
    need("rclone", "rclone")
    if not os.path.exists("/usr/bin/time"):
        need("time-not-on-path", "time")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    fs_bin = os.path.join(REPO, "target", "release", "foldersync")
    only = set(a.only.split(","))
    work = tempfile.mkdtemp(prefix="fs-perf-", dir=a.where)
    print(f"machine: {os.cpu_count()} cores, kernel {os.uname().release}; trees in {a.where}; {a.runs} interleaved runs; "
          f"foldersync {subprocess.run([fs_bin, '--version'], capture_output=True, text=True).stdout.strip()}")
    b = Bench(a, work, fs_bin)
    try:
        small = os.path.join(work, "small")
        if only & {"small", "same20k", "mutated", "rss", "logcost", "fsync"}:
            gen("create", small, "--files", 20000, "--dirs", 200)
        if "small" in only:
            b.initial("initial copy: 20,000 files of 0-16 KiB, 200 dirs", small)
        if "huge" in only:
            huge = os.path.join(work, "huge")
            gen("create", huge, "--files", 1, "--dirs", 0, "--min-size", 1 << 30, "--max-size", 1 << 30)
            b.initial("initial copy: one 1 GiB file", huge)
            shutil.rmtree(huge)
        if "large" in only:
            large = os.path.join(work, "large")
            gen("create", large, "--files", 100, "--dirs", 10, "--min-size", 10 << 20, "--max-size", 10 << 20)
            b.initial("initial copy: 100 files of 10 MiB", large)
            shutil.rmtree(large)
        if "same20k" in only:
            b.unchanged("unchanged re-run: 20,000 files", small)
        if "mutated" in only:
            base_dst = os.path.join(work, "mut-base")
            cp_tree(small, base_dst)
            mutated = os.path.join(work, "mutated")
            cp_tree(small, mutated)
            gen("mutate", mutated, "--modify", 1, "--delete", 1, "--add", 200, "--rename", 1, "--seed", 7)
            b.rounds("re-run after mutate --modify 1 --delete 1 --add 200 --rename 1 (20,000 files)",
                     b.tools(False), lambda dst: cp_tree(base_dst, dst), mutated)
        if "logcost" in only:
            times, rss, cpu = {}, {}, {}
            for r in range(a.runs):
                for name, extra in (("foldersync", []), ("foldersync -q --log-level warn", ["-q", "--log-level", "warn"])):
                    dst = os.path.join(work, "dst")
                    fresh(dst)
                    took, peak, used = run([fs_bin, "--once", "-l", b.log, *extra, small, dst])
                    times.setdefault(name, []).append(took)
                    rss.setdefault(name, []).append(peak)
                    cpu.setdefault(name, []).append(used)
            b.report("per-file logging: small initial copy with and without per-file lines", times, rss, cpu)
        if "fsync" in only:
            for title, tree in (("20,000 files of 0-16 KiB", small), ("100 files of 10 MiB", None)):
                if tree is None:
                    tree = os.path.join(work, "large-fsync")
                    gen("create", tree, "--files", 100, "--dirs", 10, "--min-size", 10 << 20, "--max-size", 10 << 20)
                tools = {
                    "foldersync": lambda s, d: [fs_bin, "--once", "-l", b.log, s, d],
                    "foldersync --fsync": lambda s, d: [fs_bin, "--once", "--fsync", "-l", b.log, s, d],
                    "rsync -a --fsync": lambda s, d: ["rsync", "-a", "--fsync", s + "/", d + "/"],
                    "cp -a": lambda s, d: ["cp", "-a", s + "/.", d],
                }
                b.rounds(f"--fsync: initial copy of {title}", tools, fresh, tree)
        big = os.path.join(work, "big")
        if "same200k" in only or "rss" in only:
            gen("create", big, "--files", 200000, "--dirs", 2000, "--max-size", 0)
        if "same200k" in only:
            b.unchanged("unchanged re-run: 200,000 empty files, 2,000 dirs", big)
        if "rss" in only:
            print("\npeak RSS of an unchanged foldersync pass")
            sizes = [("20,000", small), ("200,000", big)]
            if a.million:
                million = os.path.join(work, "million")
                gen("create", million, "--files", 1000000, "--dirs", 10000, "--max-size", 0)
                sizes.append(("1,000,000", million))
            for label, src in sizes:
                dst = os.path.join(work, "rss-dst")
                fresh(dst)
                run([fs_bin, "--once", "--allow-empty-source", "-l", b.log, src, dst])
                samples = [run([fs_bin, "--once", "-l", b.log, src, dst]) for _ in range(3)]
                print(f"  {label:>10} files: {statistics.median(s[0] for s in samples):.2f} s, "
                      f"peak RSS {max(s[1] for s in samples) / 1024:.1f} MiB")
                shutil.rmtree(dst)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
