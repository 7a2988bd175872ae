#!/usr/bin/env bash
# The GPU machine's half of tests/benchmarks/bench_gpu.py, as one call of about 8 minutes.
# Here, first (the GPU machine has no registry, no project data and no renderer):
#   python tests/benchmarks/bench_gpu.py prepare          # .gpu/: 16 + 4 Mixed23 songs, params
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
#       --platform manylinux_2_28_x86_64 -d .whl openunmix==1.3.0 soundfile==0.14.0 cffi==2.1.1 pycparser==3.12
# There (the working tree with .gpu/ and .whl/; results in $OUT):
#   bash tests/benchmarks/bench_gpu.sh
# Then here: untar $OUT/models-*.tar into the work folder (models/cuda, models/cpu-<name>) and run
#   python tests/benchmarks/bench_gpu.py agree --device cpu && python tests/benchmarks/bench_gpu.py compare
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/bench_gpu_out}; mkdir -p "$OUT"
END=${END:-480}                      # seconds for the whole script; later steps get what is left
left() { echo $(( END - SECONDS > 10 ? END - SECONDS : 10 )); }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 1
{ nvidia-smi; python3 -c "import sys, torch, numpy; print(sys.version, torch.__version__, \
numpy.__version__, torch.cuda.get_device_name(0))"; lscpu; } > "$OUT/env.txt" 2>&1
echo "== the gpu-marked test (t=$SECONDS)"
timeout 90 python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_unmix.py -rA 2>&1 | tail -4
echo "== agree: the train stage on the GPU (runtime.device: auto), 3 seeds at once (t=$SECONDS)"
timeout 150 python3 tests/benchmarks/bench_gpu.py agree --device cuda --parallel --work /tmp/bg
tar -C /tmp/bg -cf "$OUT/models-cuda.tar" models/cuda cost/cuda
echo "== scale profile variants (t=$SECONDS)"
timeout $(( $(left) > 250 ? $(left) - 150 : 100 )) python3 tests/benchmarks/bench_gpu.py scale \
    --variants w4-fp32 w0-fp32 w8-fp32 w8-bf16 --out "$OUT/scale.json" --work /tmp/bg
echo "== agree: seed 0 on this machine's CPU, 4 targets at once (t=$SECONDS)"
sed -i -E 's/^(  workers:) [0-9]+/\1 4/' .gpu/params/agree-cpu.yaml   # never changes a result
timeout "$(left)" python3 tests/benchmarks/bench_gpu.py agree --device cpu --seeds 0 --work /tmp/bg
mkdir -p /tmp/bg/host/models /tmp/bg/host/cost
mv /tmp/bg/models/cpu /tmp/bg/host/models/cpu-gpu-host && mv /tmp/bg/cost/cpu /tmp/bg/host/cost/cpu-gpu-host
tar -C /tmp/bg/host -cf "$OUT/models-cpu-gpu-host.tar" models cost   # untars as models/cpu-gpu-host
echo "== torch.compile (t=$SECONDS)"
timeout "$(left)" python3 tests/benchmarks/bench_gpu.py scale --variants w8-bf16-compile \
    --out "$OUT/scale-compile.json" --work /tmp/bg
echo "== done (t=$SECONDS)"
