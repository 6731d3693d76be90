#!/usr/bin/env python3
"""Fan-out benchmark: one SOURCE to three local targets and one remote (an sshd on 127.0.0.1 of
this script's own, as bench/remote.py starts it), beside lsyncd with one sync{} block per target.

  bench/fanout.py [--files 60] [--rounds 3] [--where /dev/shm] [--fs-bin PATH]

Setups, each on fresh directories in --where, run --rounds times in turn (medians reported):
  fs-config     one foldersync process, `--config` with one mirror of four replicas (3 local,
                1 remote): one shared watcher
  lsyncd        one lsyncd, four sync{} blocks (default.rsync x3, default.rsyncssh, delay = 0)
  fs-config-3   one foldersync process, `--config`, the three local replicas only
  fs-3-procs    three foldersync processes, one per local target (the way before --config)
For each: --files files of 4 KiB written into SOURCE one at a time (50 ms apart); for each
target, the time from close() to the file appearing there at full size (polled every 0.5 ms),
p50 and p99; CPU seconds (user + system of the daemons and the children they waited for, from
/proc, over the writes) and peak memory (VmHWM, summed over the daemon processes).
Installs lsyncd, rsync and openssh-server from Debian's packages if missing.
"""
import argparse, os, shutil, signal, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import need, pct, size_of, wait_until  # noqa: E402
from remote import Sshd  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TARGETS = ["local1", "local2", "local3", "remote"]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime, stime, cutime, cstime
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def peak_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class Setup:
    def __init__(self, name, work, fs_bin, sshd):
        self.name, self.work = name, work
        self.src = os.path.join(work, "src")
        os.makedirs(self.src)
        with open(os.path.join(self.src, "ready"), "w") as f:
            f.write("x")
        self.targets = TARGETS if name in ("fs-config", "lsyncd") else TARGETS[:3]
        self.dst = {t: os.path.join(work, t) for t in self.targets}
        for d in self.dst.values():
            os.makedirs(d)
        out = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if name == "lsyncd":
            conf = os.path.join(work, "lsyncd.conf")
            with open(conf, "w") as f:
                f.write(f'settings {{ logfile = "{work}/lsyncd.log", nodaemon = true }}\n')
                for t in TARGETS[:3]:
                    f.write(f'sync {{ default.rsync, source = "{self.src}", target = "{self.dst[t]}", '
                            'delay = 0, rsync = { archive = true } }\n')
                f.write(f'''sync {{ default.rsyncssh, source = "{self.src}", host = "127.0.0.1",
        targetdir = "{self.dst['remote']}", delay = 0, rsync = {{ archive = true, rsh = "{sshd.rsh}" }},
        ssh = {{ port = {sshd.port}, identityFile = "{sshd.key}",
                options = {{ UserKnownHostsFile = "{sshd.known}", GlobalKnownHostsFile = "/dev/null",
                             IdentitiesOnly = "yes", BatchMode = "yes" }} }} }}
''')
            self.procs = [subprocess.Popen(["lsyncd", conf], **out)]
        elif name == "fs-3-procs":
            self.procs = [subprocess.Popen([fs_bin, self.src, self.dst[t], "-l",
                                            os.path.join(work, f"fs-{t}.log"), "-i", "1h",
                                            "--state-dir", os.path.join(work, "state")], **out)
                          for t in self.targets]
        else:
            conf = os.path.join(work, "fanout.toml")
            reps = [self.dst[t] if t != "remote" else f"127.0.0.1:{self.dst[t]}" for t in self.targets]
            with open(conf, "w") as f:
                f.write(f'interval = "1h"\nlog-path = "{work}/fs.log"\nstate-dir = "{work}/state"\n'
                        f'[mirror.fan]\nsource = "{self.src}"\nrsh = "{sshd.rsh}"\n'
                        f'replicas = [{", ".join(chr(34) + r + chr(34) for r in reps)}]\n')
            self.procs = [subprocess.Popen([fs_bin, "--config", conf], **out)]
        for t, d in self.dst.items():
            if wait_until(lambda: size_of(os.path.join(d, "ready")) == 1, 60, 0.01) is None:
                self.stop()
                raise SystemExit(f"{name}: the initial sync to {t} did not finish")
        time.sleep(1)

    def cpu(self):
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def peak_mib(self):
        return sum(peak_kib(p.pid) for p in self.procs) / 1024

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def latencies(setup, n):
    """Per target, the milliseconds from each write's close() to its arrival there."""
    out = {t: [] for t in setup.targets}
    data = os.urandom(4096)
    for i in range(n):
        name = f"lat{i:04d}.bin"
        with open(os.path.join(setup.src, name), "wb") as f:
            f.write(data)
        t0 = time.perf_counter()
        waiting = set(setup.targets)
        deadline = t0 + 30
        while waiting and time.perf_counter() < deadline:
            for t in list(waiting):
                if size_of(os.path.join(setup.dst[t], name)) == 4096:
                    out[t].append((time.perf_counter() - t0) * 1000)
                    waiting.discard(t)
            time.sleep(0.0005)
        for t in waiting:
            out[t].append(float("inf"))
        time.sleep(0.05)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--where", default="/dev/shm")
    ap.add_argument("--setups", default="fs-config,lsyncd,fs-config-3,fs-3-procs")
    ap.add_argument("--fs-bin", default=None)
    a = ap.parse_args()
    need("rsync", "rsync")
    need("sshd", "openssh-server")
    if "lsyncd" in a.setups:
        need("lsyncd", "lsyncd")
    fs_bin = a.fs_bin
    if fs_bin is None:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
        fs_bin = os.path.join(target, "release", "foldersync")
    base = tempfile.mkdtemp(prefix="fs-fanout-", dir=a.where)
    sshd = Sshd(base)
    results = {}  # setup -> list of (lat per target, cpu, mib)
    try:
        for r in range(a.rounds):
            for name in a.setups.split(","):
                work = os.path.join(base, f"{name}-{r}")
                os.makedirs(work)
                setup = Setup(name, work, fs_bin, sshd)
                try:
                    c0 = setup.cpu()
                    lat = latencies(setup, a.files)
                    cpu = setup.cpu() - c0
                    mib = setup.peak_mib()
                finally:
                    setup.stop()
                results.setdefault(name, []).append((lat, cpu, mib))
                shutil.rmtree(work, ignore_errors=True)
    finally:
        sshd.stop()
        shutil.rmtree(base, ignore_errors=True)
    med = statistics.median
    print(f"{a.files} files of 4 KiB written one at a time into one SOURCE; {a.rounds} rounds, "
          f"medians of the rounds; in {a.where}")
    print(f"{'setup':<12} {'target':<8} {'p50 ms':>8} {'p99 ms':>8}   {'CPU s':>6} {'peak MiB':>9}")
    for name, runs in results.items():
        cpu = med(r[1] for r in runs)
        mib = med(r[2] for r in runs)
        for i, t in enumerate(runs[0][0]):
            p50 = med(pct(r[0][t], 50) for r in runs)
            p99 = med(pct(r[0][t], 99) for r in runs)
            tail = f"   {cpu:>6.2f} {mib:>9.1f}" if i == 0 else ""
            print(f"{name if i == 0 else '':<12} {t:<8} {p50:>8.1f} {p99:>8.1f}{tail}")


if __name__ == "__main__":
    main()
