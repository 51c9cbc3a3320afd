#!/usr/bin/env bash
# The course command: bash hw1_cloze/run.sh testing_data.csv output.csv
# Answers with the best trained models under runs/hw1_cloze/ (see README, "Submitting to the course").
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: bash $0 testing_data.csv output.csv" >&2; exit 2; }
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" MLDS_RUNS="${MLDS_RUNS:-$repo/runs}"
exec "${PYTHON:-python}" -m hw1_cloze.predict "$1" "$2"
