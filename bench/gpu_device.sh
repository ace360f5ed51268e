#!/bin/bash
# One prepared call on a lent GPU machine (bench/gpu_carry.py says how): unpack .gpucarry/bundle.tar.xz,
# start its mongod, then run bench/gpu_r50.py (IMAGES, BATCHES) or, with PROF=1, bench/gpu_profile.py.
# Writes gpu_r50.log / prof.log and the BENCHMARKS.md with its row to $OUT.
set -u
T0=$(date +%s)
G=/tmp/g; mkdir -p $G/ml /tmp/db /tmp/mr
tar -C $G -xJf .gpucarry/bundle.tar.xz || exit 3
echo "unpacked in $(( $(date +%s) - T0 )) s"
M=$G/mlibs/mongod
for i in 1 2 3 4 5 6; do
  missing=$(LD_LIBRARY_PATH=$G/ml ldd $M | awk '/not found/{print $1}')
  [ -z "$missing" ] && break
  for l in $missing; do cp $G/mlibs/$l $G/ml/ 2>/dev/null || echo "no carried $l"; done
done
echo "libs carried in: $(ls $G/ml | tr '\n' ' ')"
pgrep -x mongod >/dev/null || LD_LIBRARY_PATH=$G/ml $M --dbpath /tmp/db --port 27017 --bind_ip 127.0.0.1 --fork --logpath /tmp/mongod.log > /tmp/fork.log 2>&1 \
  || { cat /tmp/fork.log; tail -30 /tmp/mongod.log; exit 4; }
ln -sfn $PWD/resources maskreview/resources; ln -sfn $PWD/icons maskreview/icons; ln -sfn $PWD/packaging/linux maskreview/freedesktop
export PYTHONPATH=$G/site:$PWD PYTHONUNBUFFERED=1
export FIFTYONE_DATABASE_URI=mongodb://127.0.0.1:27017 FIFTYONE_DATABASE_VALIDATION=false FIFTYONE_DO_NOT_TRACK=true
export MASKREVIEW_CONFIG_DIR=/tmp/mr/cfg MASKREVIEW_DATA_DIR=/tmp/mr/data MASKREVIEW_CACHE_DIR=/tmp/mr/cache
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv
nproc; cat /proc/loadavg
python3 - <<'PY' || exit 5
import importlib, traceback
for m in ["torch", "torchvision", "detectron2.modeling", "pycocotools.mask", "fiftyone", "maskreview.core.model.runs"]:
    try:
        mod = importlib.import_module(m); print("ok", m, getattr(mod, "__version__", ""))
    except Exception:
        traceback.print_exc(); raise SystemExit(1)
import torch, fiftyone as fo
print("cuda", torch.cuda.is_available(), torch.version.cuda, "datasets", fo.list_datasets())
PY
echo "ready in $(( $(date +%s) - T0 )) s"
if [ -n "${PROF:-}" ]; then python3 bench/gpu_profile.py 2>&1 | tee $OUT/prof.log; exit; fi
python3 bench/gpu_r50.py --images ${IMAGES:-50} --batches ${BATCHES:-1} 2>&1 | grep -v "^Computing\|^ *[0-9]*%|" | tee $OUT/gpu_r50.log
rc=${PIPESTATUS[0]}
cat /proc/loadavg
cp BENCHMARKS.md $OUT/
echo "done rc=$rc in $(( $(date +%s) - T0 )) s"
exit $rc
