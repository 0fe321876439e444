#!/bin/sh
# Runs its arguments (the test suite) with TMPDIR set to a fresh directory, and fails if anything is
# left in it afterwards: no test may leave a file or directory in the temp folder, pass or fail. What
# was left is listed, then removed, so one failing run does not litter the machine either.
set -u
base=${TMPDIR:-/tmp}
guarded=$(mktemp -d "$base/pystage-test-tmp.XXXXXX") || exit 1
TMPDIR=$guarded "$@"
code=$?
left=$(ls -A "$guarded")
rm -rf "$guarded"
if [ -n "$left" ]; then
  echo "pystage tests: left in the temp folder (each must be removed by the test that made it):" $left >&2
  [ "$code" = 0 ] && code=1
fi
exit "$code"
