#!/bin/sh
# The test command (see README): installs what the tests need when it is missing (as root, from
# Debian's packages: rsync, setfacl, mkfs.vfat, fusefat, sshd, curl, systemd-analyze), then
# runs `cargo test` with any arguments given. Without root the tests that need a missing tool say
# so and skip.
set -eu
cd "$(dirname "$0")/.."
need=""
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
have rsync || need="$need rsync"
have setfacl || need="$need acl"
have mkfs.vfat || need="$need dosfstools"
have fusefat || need="$need fusefat"
have sshd || need="$need openssh-server"
have ssh || need="$need openssh-client"
have curl || need="$need curl"
have systemd-analyze || need="$need systemd"
if [ -n "$need" ]; then
    if [ "$(id -u)" = 0 ] && have apt-get; then
        echo "tests/run.sh: installing$need" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
    else
        echo "tests/run.sh: missing$need; the tests that need them will skip" >&2
    fi
fi
exec cargo test "$@"
