#!/usr/bin/env python3
"""Times `foldersync --once` side by side with `cp -a` and `rsync -a --delete`, interleaved.

  bench/compare.py [--files 20000] [--dirs 200] [--runs 7] [--where /dev/shm|DIR]

Builds a tree with ../shared/bench/gen_tree.py, then for each round runs every tool once on
the initial copy (empty replica) and once on an unchanged re-run, in rotating order so drift
in the machine's speed hits all tools alike. Prints medians and each tool's ratio to
foldersync's. Installs rsync from Debian's packages if it is missing.
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
GEN = os.path.join(REPO, "..", "shared", "bench", "gen_tree.py")


def need(tool, package):
    if shutil.which(tool):
        return
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True)


def timed(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--dirs", type=int, default=200)
    ap.add_argument("--max-size", type=int, default=16384)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--where", default="/dev/shm", help="directory to build the trees in (tmpfs by default)")
    a = ap.parse_args()

    need("rsync", "rsync")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    fs_bin = os.path.join(REPO, "target", "release", "foldersync")

    work = tempfile.mkdtemp(prefix="fs-bench-", dir=a.where)
    try:
        src = os.path.join(work, "src")
        subprocess.run([sys.executable, GEN, "create", src, "--files", str(a.files), "--dirs", str(a.dirs),
                        "--max-size", str(a.max_size)], check=True)
        log = os.path.join(work, "bench.log")
        tools = {
            "foldersync": lambda dst: [fs_bin, "--once", "-l", log, src, dst],
            "cp -a": lambda dst: ["cp", "-a", src + "/.", dst],
            "rsync -a --delete": lambda dst: ["rsync", "-a", "--delete", src + "/", dst + "/"],
        }
        initial = {name: [] for name in tools}
        rerun = {name: [] for name in tools}
        names = list(tools)
        for r in range(a.runs):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                dst = os.path.join(work, "dst")
                shutil.rmtree(dst, ignore_errors=True)
                os.mkdir(dst)
                subprocess.run(["sync"])
                initial[name].append(timed(tools[name](dst)))
                if name != "cp -a":  # cp has no notion of "nothing to do"
                    rerun[name].append(timed(tools[name](dst)))
        print(f"tree: {a.files} files, {a.dirs} dirs, 0-{a.max_size} B, in {a.where}; {a.runs} interleaved runs; "
              f"{os.cpu_count()} cores")
        for title, table in (("initial copy", initial), ("unchanged re-run", rerun)):
            base = statistics.median(table["foldersync"])
            print(f"\n{title}:")
            print(f"  {'tool':<20} {'median s':>9} {'foldersync / tool':>18}")
            for name, times in table.items():
                if times:
                    med = statistics.median(times)
                    print(f"  {name:<20} {med:>9.3f} {base / med:>18.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
