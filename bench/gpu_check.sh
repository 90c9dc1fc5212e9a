#!/usr/bin/env bash
# The GPU check of issue 13 (item 7) as one command for the device machine: the SDK serving
# the VLM stand-in of bench/sdk_batching.py next to the stand-in's best in-process batched
# rate on the same GPU (goal: served >= 0.90 of it).
#
# The device machine (an H200) has python3 3.12 with a CUDA torch, numpy, pillow, click,
# rich and prometheus-client, no network, and no install of this project. So:
#
#   bench/gpu_check.sh fetch    # here, once: the SDK's gRPC wheels for CPython 3.12 into .whl/
#   bench/gpu_check.sh run      # there, with .whl carried: device.run(command="bench/gpu_check.sh run",
#                               #   carry=[".whl"], timeout_s=540); the output lands in $OUT
#
# `run` lays the package out as pyproject's package-dir does (protos/gmai_eval, server,
# clients) with .ci/tree, puts it and the wheels on PYTHONPATH, prints the GPU, and runs the
# bench. PY, DEVICE and SCALE override python3, cuda and gpu (PY=.venv/bin/python
# DEVICE=cpu SCALE=cpu bench/gpu_check.sh run tries the script on a CPU machine).
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=(grpcio==1.85.1 grpcio-health-checking==1.85.1 grpcio-reflection==1.85.1
        protobuf==7.36.2 googleapis-common-protos==1.76.0)

case "${1:-}" in
fetch)
    rm -rf .whl && mkdir -p .whl
    plats=()
    for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
        plats+=(--platform "$p")
    done
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        "${plats[@]}" -d .whl "${WHEELS[@]}"
    ls -l .whl
    ;;
run)
    PY=${PY:-python3}
    OUT=${OUT:-/tmp/gpu-check-out}
    mkdir -p "$OUT"
    site=""
    if compgen -G ".whl/*.whl" >/dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gmai-site .whl/*.whl
        site=/tmp/gmai-site
    fi
    .ci/tree  # build/typecheck/gmai_eval: the package laid out as pyproject's package-dir maps it
    export PYTHONPATH="$PWD/build/typecheck${site:+:$site}" PYTHONUNBUFFERED=1
    { command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; } 2>&1 | tee "$OUT/gpu.txt" || true
    "$PY" -c "import torch, grpc; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'grpc', grpc.__version__)" | tee -a "$OUT/gpu.txt"
    "$PY" bench/sdk_batching.py --proxy-only --device "${DEVICE:-cuda}" --proxy-scale "${SCALE:-gpu}" --threads 8 2>&1 | tee "$OUT/sdk_batching.txt"
    ;;
*)
    echo "usage: bench/gpu_check.sh fetch|run" >&2
    exit 2
    ;;
esac
