#!/usr/bin/env bash
# Install into .venv and run the main job on the built-in Arena.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup_env.sh
exec .venv/bin/python scripts/evaluate.py --pilot expert --episodes 50 --json out/main_job/expert.json "$@"
