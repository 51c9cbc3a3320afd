#!/usr/bin/env bash
# The course command: bash hw4_chatbot/run.sh [S2S|RL|BEST] input.txt output.txt
# Replies with the trained models under runs/hw4_chatbot/ (see README, "Submitting to the course").
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: bash $0 [S2S|RL|BEST] input.txt output.txt" >&2; exit 2; }
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" MLDS_RUNS="${MLDS_RUNS:-$repo/runs}"
exec "${PYTHON:-python}" -m hw4_chatbot.predict "$1" "$2" "$3"
