"""What the benchmark scripts share: installing a missing tool, polling with a deadline, a
file's size, percentiles."""
import os, shutil, subprocess, time


def need(tool, package):
    """Installs `package` from Debian's packages when `tool` is not on PATH (nor in /usr/sbin)."""
    if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True)


def wait_until(cond, timeout, step=0.0005):
    """Polls `cond` every `step` seconds; the time it first held, or None after `timeout`."""
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if cond():
            return time.perf_counter()
        time.sleep(step)
    return None


def size_of(path):
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]
