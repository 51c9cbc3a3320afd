#!/usr/bin/env bash
# The course command: bash hw3_gan/run.sh testing_text.txt  (writes samples/sample_<id>_<k>.jpg)
# Draws with the newest trained generator under runs/hw3_gan/ (see README, "Submitting to the course").
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: bash $0 testing_text.txt" >&2; exit 2; }
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" MLDS_RUNS="${MLDS_RUNS:-$repo/runs}"
exec "${PYTHON:-python}" -m hw3_gan.generate "$1" --out samples
