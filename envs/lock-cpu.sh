#!/usr/bin/env bash
# Regenerates envs/cpu-lock.txt: the exact versions the README's install commands resolve to today, on Linux
# x86_64 with CPU torch. The README's commands install with `-c envs/cpu-lock.txt`, so a later install gets these.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(mktemp -d)/venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q torch==2.13.0 -e '.[test]'
{
    echo "# The CPU environment of the README's two commands, as measured (pip freeze of a fresh venv after"
    echo "# pip install torch==2.13.0 -e '.[test]', torch itself left to the command). Regenerate: bash envs/lock-cpu.sh"
    "$venv/bin/pip" freeze --exclude-editable | grep -v -i -E '^torch=='
} > envs/cpu-lock.txt
rm -rf "$(dirname "$venv")"
echo "envs/cpu-lock.txt: $(grep -vc '^#' envs/cpu-lock.txt) packages"
