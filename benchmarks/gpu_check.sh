#!/usr/bin/env bash
# The accelerator path in one script (about 6-8 minutes on one H100/H200-class GPU):
#   1. every registered method trains 2 epochs with bf16 autocast and with fp32: finite losses, accuracy of
#      the two within a tolerance, no tensor left on the CPU, host-device synchronisations per step counted;
#      then two deterministic runs with identical metrics      (benchmarks/check_methods_device.py)
#   2. ResNet-18 training throughput at 224 and 112 px, batch 64 and 256: noisyfer's pipeline against the
#      model-only ceiling and the per-sample PIL + DataLoader pipeline; channels_last and torch.compile
#                                                              (benchmarks/bench_accelerator.py)
#   3. the method overhead table on the device                 (benchmarks/bench_overhead.py)
#
# Usage:
#   benchmarks/gpu_check.sh                          # on a CUDA machine; writes gpu_check/*.txt
#   benchmarks/gpu_check.sh --device cpu --quick     # the same code path here, small sizes (tested in CI)
#   benchmarks/gpu_check.sh --out DIR                # where the reports go ($OUT on the device machine)
#   benchmarks/gpu_check.sh --methods ce,elr         # only these methods in stages 1 and 3 (default: all)
# The Python used: $PYTHON, else .venv/bin/python, else python3 (a machine's own PyTorch works: the
# script puts src/ on PYTHONPATH and needs only torch, numpy, pillow, pyyaml, scikit-learn, tqdm, tensorboard).
set -uo pipefail
cd "$(dirname "$0")/.."

device=cuda
quick=()
methods=all
out=gpu_check
while [ $# -gt 0 ]; do
    case "$1" in
        --device) device=$2; shift 2 ;;
        --quick) quick=(--quick); shift ;;
        --out) out=$2; shift 2 ;;
        --methods) methods=$2; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument '$1' (expected --device D, --quick, --out DIR, --methods LIST)" >&2; exit 2 ;;
    esac
done
py=${PYTHON:-}
if [ -z "$py" ]; then
    if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
mkdir -p "$out" || exit 2
status=0
scale=1
[ "$device" = cpu ] && scale=4  # the limits are sized for a GPU; a CPU takes longer for the same small runs

stage() {  # stage NAME TIMEOUT_S SCRIPT ARGS...: run, tee to OUT/NAME.txt, remember a failure
    local name=$1 limit=$(($2 * scale))
    shift 2
    echo "== $name ($(date +%T), limit ${limit}s)"
    timeout "$limit" "$py" "$@" 2>"$out/$name.log" | tee "$out/$name.txt"
    local rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 0 ]; then
        echo "!! $name exited with status $rc (stderr in $out/$name.log)"
        tail -5 "$out/$name.log"
        status=1
    fi
}

"$py" -c "import torch; print('torch', torch.__version__, '| cuda', torch.cuda.is_available(), \
'|', torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')" | tee "$out/device.txt"
stage methods 150 benchmarks/check_methods_device.py --device "$device" --methods "$methods" "${quick[@]}"
if [ "$device" = cpu ]; then
    # torch.compile of ResNet-18 takes minutes on a CPU; its engine path is tested in the test suite
    stage throughput 150 benchmarks/bench_accelerator.py --device "$device" --no-compile "${quick[@]}"
else
    stage throughput 240 benchmarks/bench_accelerator.py --device "$device" "${quick[@]}"
fi
# bf16 autocast as the engine uses it on CUDA; on a CPU fp32, what a CPU user trains with
amp=on
[ "$device" = cpu ] && amp=off
stage overhead 90 benchmarks/bench_overhead.py --device "$device" --amp "$amp" --epochs 2 --methods "$methods" "${quick[@]}"
echo "== done ($(date +%T)): reports in $out/"
exit $status
