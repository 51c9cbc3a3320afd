#!/usr/bin/env bash
# The course command: bash hw2_video_caption/hw2_seq2seq.sh data_dir test_output.txt peer_review_output.txt
# Captions with the newest trained model under runs/hw2_video_caption/ (see README, "Submitting to the course").
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: bash $0 data_dir test_output.txt peer_review_output.txt" >&2; exit 2; }
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" MLDS_RUNS="${MLDS_RUNS:-$repo/runs}"
exec "${PYTHON:-python}" -m hw2_video_caption.predict "$1" "$2" "$3"
