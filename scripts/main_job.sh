#!/usr/bin/env bash
# Install into .venv, then run the whole pipeline on the built-in Arena:
# record expert demonstrations, train the BC policy, run one correction round
# with the expert corrector, evaluate, and print the report.
# Output goes to $OUT (default out/main_job), which is cleared first.
# 2 min 16 s on an idle 2-core machine once .venv exists; the first install adds about a minute.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup_env.sh

OUT=${OUT:-out/main_job}
python=.venv/bin/python
rm -rf "$OUT"
mkdir -p "$OUT"
log() { printf '\n== %s\n' "$*"; }

log "1/5 record 50 expert rounds"
$python scripts/collect_demos.py --pilot expert --episodes 50 --seed 0 --out "$OUT/demos"

log "2/5 train the BC policy (per-button thresholds tuned on validation episodes)"
$python scripts/train_bc.py --demos "$OUT/demos" --out "$OUT/bc" --no-progress

log "3/5 one correction round with the expert corrector"
$python scripts/dagger.py --policy "$OUT/bc" --out "$OUT/dagger" --rounds 1 --episodes-per-round 10 \
    --eval-episodes 50 --no-progress

log "4/5 evaluate the expert on the seeds the policies were evaluated on"
$python scripts/evaluate.py --pilot expert --episodes 50 --seed 100000 --json "$OUT/expert.json" 2>/dev/null

log "5/5 report"
$python scripts/report.py "$OUT"
