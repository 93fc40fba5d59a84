#!/usr/bin/env bash
# Trains recipes side by side on one GPU, unattended, for a lent GPU machine that gets a copy
# of the repository but not ../shared. Each run's best.safetensors, metrics.jsonl and log
# are copied to OUT_DIR as NAME.safetensors, NAME.metrics.jsonl and NAME.log.
#
#   python datasets/pack_training.py .device-data/train.tar RECIPE...   # here, once
#   bash weights/recipes/run_gpu.sh OUT_DIR SECONDS RECIPE:STEPS [RECIPE:STEPS ...]
#
# SECONDS bounds each run (`timeout`): a dry run of about 60 s reads the rate from the
# progress bars in the logs, and the real run's STEPS are sized from it to end in time.
# A run stopped by the bound still leaves the best checkpoint of its last validation.
set -uo pipefail
out=$1 limit=$2
shift 2
mkdir -p "$out"
if [ ! -d ../shared/data/train ]; then
    mkdir -p ../shared/data/train && tar -xf .device-data/train.tar -C ../shared/data/train
fi
if ! python3 -c "import tomli_w" 2>/dev/null; then  # the one dependency GPU images lack
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/tomli_w-*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
names=()
for job in "$@"; do
    recipe=${job%%:*} steps=${job##*:}
    name=$(basename "$recipe" .toml)
    task=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["task"])' "$recipe")
    timeout "$limit" python3 -m restore train "$task" --config "$recipe" --out "runs/$name" --steps "$steps" \
        >"$out/$name.log" 2>&1 &
    names+=("$name")
done
wait
for name in "${names[@]}"; do
    cp "runs/$name/best.safetensors" "$out/$name.safetensors" 2>/dev/null
    cp "runs/$name/metrics.jsonl" "$out/$name.metrics.jsonl" 2>/dev/null
    tail -c 2000 "$out/$name.log" | tr '\r' '\n' | tail -n 4
done
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv 2>/dev/null
exit 0
