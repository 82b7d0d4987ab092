#!/usr/bin/env bash
# Install into .venv and run the whole test suite (6 min on an idle 2-core machine once .venv exists).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup_env.sh
exec .venv/bin/python -m pytest -q "$@"
