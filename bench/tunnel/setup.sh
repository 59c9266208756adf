#!/usr/bin/env bash
# Installs what bench/tunnel compares warren against: sshd and ssh (for
# `ssh -L -c aes128-gcm@openssh.com`). Debian/Ubuntu, as root. Idempotent.
set -euo pipefail
if command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ]; then
  if command -v ssh >/dev/null 2>&1; then
    echo "ssh and sshd already installed"
    exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends openssh-server openssh-client
mkdir -p /run/sshd
echo "installed: $(ssh -V 2>&1)"
