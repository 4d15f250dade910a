#!/usr/bin/env bash
# Makes sure the system tools churnwatch needs are installed, from Debian's packages.
#
#   scripts/system-tools.sh demo    java and mvn (the local Kafka broker)
#   scripts/system-tools.sh test    the above, plus promtool and prometheus (rule tests and
#                                   the Prometheus integration test), and a C compiler and
#                                   Python's headers (the compiled build, see setup.py)
#
# Missing ones are installed with apt-get when running as root (apt-get update runs once);
# otherwise the script names the packages to install and fails. `make demo`, `make test`
# and .ci/run all call it.
set -euo pipefail

what="${1:-test}"
missing=()
if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    missing+=(python3 python3-venv)
fi
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
if [[ "${what}" == test ]]; then
    if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
        missing+=(prometheus)
    fi
    command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
    if ! python3 -c 'import os, sysconfig, sys
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
            2>/dev/null; then
        missing+=(python3-dev)
    fi
fi

if ((${#missing[@]} == 0)); then
    exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
    echo "missing system packages: ${missing[*]}; install them (apt-get install ${missing[*]}) and run again" >&2
    exit 1
fi
echo "installing system packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >&2
