#!/usr/bin/env python3
"""Remote-replica benchmark: foldersync (REPLICA `127.0.0.1:PATH`, rsync over ssh) side by side
with lsyncd (`default.rsyncssh`, `delay = 0`), both against one sshd on 127.0.0.1 that this
script starts with keys of its own.

  bench/remote.py [--files 40] [--burst 2000] [--where /dev/shm] [--big-mib 1024] [--dir-files 10000]
                  [--root-files 0] [--only latency,burst,renames] [--fs-bin PATH]

For each tool, on a fresh SOURCE/REPLICA pair in --where:
  latency  files of 4 KiB written into SOURCE one at a time; for each, the time from close() to
           the file appearing in REPLICA with its full size (polled every 1 ms); p50 and p90.
  burst    --burst files in 20 directories copied into SOURCE with cp -a; the time from the copy's
           start until REPLICA holds every file at full size.
  renames  a --big-mib MiB file and a --dir-files-file directory renamed in SOURCE; the time until
           REPLICA has the new names, and whether REPLICA kept their inodes (nothing copied).
--root-files N puts N files of 100 bytes at SOURCE's root before the start (a batch that lists
the root must not send them); --only runs some of the three; --fs-bin runs that foldersync
binary (another build, to compare) instead of building this one.
Installs lsyncd, rsync and openssh-server from Debian's packages if missing.
"""
import argparse, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import need, pct, size_of, wait_until  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


class Sshd:
    def __init__(self, work):
        self.dir = os.path.join(work, "sshd")
        os.makedirs(self.dir)
        for key in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(self.dir, key)],
                           check=True)
        shutil.copy(os.path.join(self.dir, "client_key.pub"), os.path.join(self.dir, "authorized_keys"))
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        with open(os.path.join(self.dir, "sshd_config"), "w") as f:
            f.write(f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.dir}/host_key\n"
                    f"AuthorizedKeysFile {self.dir}/authorized_keys\nPidFile none\nStrictModes no\n"
                    "UsePAM no\nPermitRootLogin yes\nPasswordAuthentication no\nMaxSessions 100\n"
                    "MaxStartups 100\nLogLevel ERROR\n")
        with open(os.path.join(self.dir, "host_key.pub")) as f:
            kind, key = f.read().split()[:2]
        self.known = os.path.join(self.dir, "known_hosts")
        with open(self.known, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {kind} {key}\n")
        os.makedirs("/run/sshd", exist_ok=True)
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", os.path.join(self.dir, "sshd_config")],
                                     stderr=subprocess.DEVNULL)
        wait_until(lambda: socket.socket().connect_ex(("127.0.0.1", self.port)) == 0, 10, 0.01)
        self.key = os.path.join(self.dir, "client_key")
        self.rsh = (f"ssh -F /dev/null -p {self.port} -i {self.key} -o IdentitiesOnly=yes "
                    f"-o UserKnownHostsFile={self.known} -o GlobalKnownHostsFile=/dev/null")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Tool:
    def __init__(self, name, work, fs_bin, sshd, root_files=0):
        self.name = name
        self.src, self.dst = os.path.join(work, "src"), os.path.join(work, "dst")
        os.makedirs(self.src)
        os.makedirs(self.dst)
        for i in range(root_files):
            with open(os.path.join(self.src, f"root-{i}.txt"), "wb") as f:
                f.write(b"r" * 100)
        with open(os.path.join(self.src, "ready"), "w") as f:
            f.write("x")
        if name == "foldersync":
            self.status = os.path.join(work, "status.json")
            cmd = [fs_bin, self.src, f"127.0.0.1:{self.dst}", "-e", sshd.rsh, "-l",
                   os.path.join(work, "fs.log"), "--status-file", self.status, "-i", "1h"]
        else:
            conf = os.path.join(work, "lsyncd.conf")
            with open(conf, "w") as f:
                f.write(f'''settings {{ logfile = "{work}/lsyncd.log", nodaemon = true }}
sync {{ default.rsyncssh, source = "{self.src}", host = "127.0.0.1", targetdir = "{self.dst}",
        delay = 0, rsync = {{ archive = true, rsh = "{sshd.rsh}" }},
        ssh = {{ port = {sshd.port}, identityFile = "{sshd.key}",
                options = {{ UserKnownHostsFile = "{sshd.known}", GlobalKnownHostsFile = "/dev/null",
                             IdentitiesOnly = "yes", BatchMode = "yes" }} }} }}
''')
            cmd = ["lsyncd", conf]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if wait_until(lambda: size_of(os.path.join(self.dst, "ready")) == 1, 60, 0.01) is None:
            raise SystemExit(f"{name}: initial sync did not finish")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def latency(tool, n):
    data = os.urandom(4096)
    out = []
    for i in range(n):
        name = f"lat-{i}.bin"
        with open(os.path.join(tool.src, name), "wb") as f:
            f.write(data)
        t0 = time.perf_counter()
        t1 = wait_until(lambda: size_of(os.path.join(tool.dst, name)) == 4096, 30)
        if t1 is None:
            raise SystemExit(f"{tool.name}: {name} never arrived")
        out.append((t1 - t0) * 1000)
        time.sleep(0.05)
    return out


def burst(tool, tree, n):
    t0 = time.perf_counter()
    subprocess.run(["cp", "-a", tree, os.path.join(tool.src, "burst")], check=True)
    dst = os.path.join(tool.dst, "burst")

    def done():
        count = 0
        for _, _, fs in os.walk(dst):
            count += len(fs)
        return count >= n
    t1 = wait_until(done, 600, 0.01)
    return t1 - t0


def renames(tool, big_mib, dir_files):
    big = os.path.join(tool.src, "big.img")
    with open(big, "wb") as f:
        for _ in range(big_mib):
            f.write(os.urandom(1 << 20))
    album = os.path.join(tool.src, "album")
    os.makedirs(album)
    for i in range(dir_files):
        with open(os.path.join(album, f"p{i}.jpg"), "wb") as f:
            f.write(b"x" * 100)
    wait_until(lambda: size_of(os.path.join(tool.dst, "big.img")) == big_mib << 20
               and os.path.exists(os.path.join(tool.dst, "album", f"p{dir_files - 1}.jpg")), 600, 0.05)
    time.sleep(1)
    inodes = (os.stat(os.path.join(tool.dst, "big.img")).st_ino, os.stat(os.path.join(tool.dst, "album")).st_ino)
    t0 = time.perf_counter()
    os.rename(big, os.path.join(tool.src, "big-renamed.img"))
    os.rename(album, os.path.join(tool.src, "album-2025"))
    t1 = wait_until(lambda: size_of(os.path.join(tool.dst, "big-renamed.img")) == big_mib << 20
                    and os.path.exists(os.path.join(tool.dst, "album-2025", f"p{dir_files - 1}.jpg"))
                    and not os.path.exists(os.path.join(tool.dst, "big.img")), 600, 0.01)
    kept = (os.stat(os.path.join(tool.dst, "big-renamed.img")).st_ino == inodes[0],
            os.stat(os.path.join(tool.dst, "album-2025")).st_ino == inodes[1])
    return t1 - t0, kept


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=40)
    ap.add_argument("--burst", type=int, default=2000)
    ap.add_argument("--where", default="/dev/shm")
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--dir-files", type=int, default=10000)
    ap.add_argument("--tools", default="foldersync,lsyncd")
    ap.add_argument("--root-files", type=int, default=0)
    ap.add_argument("--only", default="latency,burst,renames")
    ap.add_argument("--fs-bin", default=None)
    a = ap.parse_args()
    only = set(a.only.split(","))
    if "lsyncd" in a.tools.split(","):
        need("lsyncd", "lsyncd")
    need("rsync", "rsync")
    need("sshd", "openssh-server")
    fs_bin = a.fs_bin
    if fs_bin is None:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
        fs_bin = os.path.join(REPO, "target", "release", "foldersync")
    base = tempfile.mkdtemp(prefix="fs-remote-", dir=a.where)
    sshd = Sshd(base)
    try:
        tree = os.path.join(base, "burst-tree")
        for i in range(a.burst if "burst" in only else 0):
            d = os.path.join(tree, f"d{i % 20}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"f{i}"), "wb") as f:
                f.write(os.urandom(2048))
        rows = []
        for name in a.tools.split(","):
            work = os.path.join(base, name)
            os.makedirs(work)
            tool = Tool(name, work, fs_bin, sshd, a.root_files)
            nan = float("nan")
            try:
                lat = latency(tool, a.files) if "latency" in only else [nan]
                conv = burst(tool, tree, a.burst) if "burst" in only else nan
                took, kept = renames(tool, a.big_mib, a.dir_files) if "renames" in only else (nan, None)
            finally:
                tool.stop()
            rows.append((name, pct(lat, 50), pct(lat, 90), conv, took, kept))
        print(f"sshd on 127.0.0.1; {a.files} files of 4 KiB one at a time; burst of {a.burst} files; "
              f"renames of a {a.big_mib} MiB file and a {a.dir_files}-file directory; trees in {a.where}; "
              f"{a.root_files} other files at SOURCE's root")
        print(f"{'tool':<12} {'p50 ms':>8} {'p90 ms':>8} {'burst s':>8} {'renames s':>10}  inodes kept (file, dir)")
        for name, p50, p90, conv, took, kept in rows:
            print(f"{name:<12} {p50:>8.1f} {p90:>8.1f} {conv:>8.2f} {took:>10.2f}  {kept}")
    finally:
        sshd.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
