#!/bin/sh
# What `npm test` needs beyond Node and Python, checked before anything runs: redis-server 7+ on PATH
# (the Redis tests start their own) and numpy for the Python that runs the numpy tests. Where this
# machine can install a missing one (root or password-less sudo, apt-get), it does, saying so in one
# line; where it cannot, it stops with one line naming the package. Then it runs its arguments (the
# tests) with PYSTAGE_NUMPY_PYTHON set when only Debian's python3 has numpy.
# Only sh built-ins, `id` and the tools it checks are used: the test of this script runs it on a PATH
# holding nothing else.
set -u

say() { echo "pystage tests: $*" >&2; }

# How to run apt-get here, or nothing when this user cannot install packages.
installer=""
if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    installer="apt-get"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    installer="sudo -n apt-get"
  fi
fi
updated=no

# install PACKAGE: apt-get install it (after one apt-get update), or fail.
install() {
  if [ "$updated" = no ]; then
    $installer update -qq >/dev/null 2>&1 || return 1
    updated=yes
  fi
  $installer install -y -qq "$1" >/dev/null 2>&1
}

# need PACKAGE WHAT: stop, naming the package, when it cannot be installed here; else install it.
need() {
  if [ -z "$installer" ]; then
    say "$2; install the package $1 (Debian/Ubuntu: sudo apt-get install $1), then run npm test again"
    exit 1
  fi
  say "$2; installing the package $1 with apt-get"
  install "$1" || { say "apt-get could not install $1; install it, then run npm test again"; exit 1; }
}

# The major version of the redis-server on PATH ("Redis server v=7.0.15 sha=..."), 0 when there is none.
redis_major() {
  version=$(redis-server --version 2>/dev/null) || { echo 0; return; }
  version=${version#*v=}
  echo "${version%%.*}"
}

major=$(redis_major)
case $major in ''|*[!0-9]*) major=0 ;; esac
if [ "$major" -lt 7 ]; then
  if [ "$major" = 0 ]; then need redis-server "redis-server is not on PATH (the Redis tests need 7 or later)"
  else need redis-server "redis-server on PATH is version $major (the Redis tests need 7 or later)"
  fi
  major=$(redis_major)
  case $major in ''|*[!0-9]*) major=0 ;; esac
  if [ "$major" -lt 7 ]; then
    say "the redis-server apt-get installed is older than 7 (or not on PATH); install Redis 7+, then run npm test again"
    exit 1
  fi
fi

# numpy: for PYSTAGE_NUMPY_PYTHON when set, else for the python3 on PATH (what the numpy tests run).
numpy_python=${PYSTAGE_NUMPY_PYTHON:-python3}
if ! "$numpy_python" -c 'import numpy' >/dev/null 2>&1; then
  need python3-numpy "$numpy_python cannot import numpy (the numpy tests need it)"
  if ! "$numpy_python" -c 'import numpy' >/dev/null 2>&1; then
    # The python3 on PATH is not Debian's (a pyenv one, say): Debian's has numpy now, and runs those tests.
    if /usr/bin/python3 -c 'import numpy' >/dev/null 2>&1; then
      say "the numpy tests run with /usr/bin/python3 (PYSTAGE_NUMPY_PYTHON), which has the numpy just installed"
      PYSTAGE_NUMPY_PYTHON=/usr/bin/python3
      export PYSTAGE_NUMPY_PYTHON
    else
      say "python3-numpy is installed but neither $numpy_python nor /usr/bin/python3 imports numpy; install numpy for $numpy_python (or set PYSTAGE_NUMPY_PYTHON), then run npm test again"
      exit 1
    fi
  fi
fi

exec "$@"
