#!/usr/bin/env bash
# Data-parallel `roadseg train` on the Ascend NPUs of one machine (or of several) with MindSpore's msrun.
#
# Usage:
#   examples/train_ascend_distributed.sh DATA RUN_DIR [more `roadseg train` options...]
#
#   DATA      training pairs in the DeepGlobe layout (<id>_sat.jpg with <id>_mask.png); to train on
#             GeoTIFF pairs instead, give "" here and pass --images DIR --masks DIR as extra options
#   RUN_DIR   run directory (-o): config.yaml, metrics.jsonl, last.ckpt, best.ckpt; msrun's logs go
#             to RUN_DIR/msrun (scheduler.log, worker_<rank>.log)
#   the rest  passed to `roadseg train` unchanged, e.g. --config examples/train.yaml --init dlinknet34-deepglobe
#
# Environment:
#   NPUS=8         NPUs used on this machine (msrun --local_worker_num)
#   PORT=8118      msrun scheduler port (--master_port), free on the master node
#   RESUME=1       continue the run in RUN_DIR where it stopped (`roadseg train --resume RUN_DIR`; DATA is
#                  ignored, give ""; only --epochs and --workers may be passed on)
#   DRY_RUN=1      only print the msrun command
#   ROADSEG=PATH   the roadseg executable (default: `command -v roadseg`; msrun needs a full path)
#   MSRUN=PATH     the msrun executable (default: msrun on PATH, i.e. MindSpore's environment)
#   Several machines (run the script on each, with the same DATA, options and PORT):
#   NODES=2             number of machines: msrun --worker_num becomes NODES x NPUS
#   MASTER_ADDR=a.b.c.d address of node 0, where msrun's scheduler runs (--master_addr)
#   NODE_RANK=0..N-1    this machine's rank (--node_rank); 0 on the master
#
# Examples:
#   examples/train_ascend_distributed.sh data/deepglobe/train runs/dg8 --val-dir data/deepglobe/valid
#   NPUS=4 examples/train_ascend_distributed.sh data/deepglobe/train runs/dg4 --config examples/train.yaml
#   NODES=2 MASTER_ADDR=10.0.0.1 NODE_RANK=1 examples/train_ascend_distributed.sh /data/dg /shared/runs/x
#   RESUME=1 examples/train_ascend_distributed.sh "" runs/dg8 --epochs 400
#
# Each worker trains on its share of every epoch and gradients are averaged, so the global batch is
# --batch-size x workers; only rank 0 writes the run directory. msrun sets each worker's device id.
# Set up the CANN environment first (e.g. `source /usr/local/Ascend/ascend-toolkit/set_env.sh`) and
# install MindSpore's Ascend build into the environment that holds roadseg.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
data=$1
run_dir=$2
shift 2

npus=${NPUS:-8}
port=${PORT:-8118}
nodes=${NODES:-1}
for name in npus port nodes; do
    if ! [[ ${!name} =~ ^[1-9][0-9]*$ ]]; then
        echo "error: ${name^^}=${!name} is not a positive integer" >&2
        exit 2
    fi
done

roadseg=${ROADSEG:-$(command -v roadseg || true)}
if [[ -z $roadseg || ! -x $roadseg ]]; then
    echo "error: roadseg executable not found; activate its environment or set ROADSEG=/full/path/roadseg" >&2
    exit 2
fi
roadseg=$(cd "$(dirname "$roadseg")" && pwd)/$(basename "$roadseg")  # msrun does not search PATH
msrun=${MSRUN:-msrun}

log_dir=$run_dir/msrun
cluster=(--worker_num="$npus" --local_worker_num="$npus")
if [[ $nodes -gt 1 ]]; then
    : "${MASTER_ADDR:?NODES=$nodes needs MASTER_ADDR (node 0 address) and NODE_RANK}"
    : "${NODE_RANK:?NODES=$nodes needs NODE_RANK (0 on the master)}"
    if ! [[ $NODE_RANK =~ ^[0-9]+$ ]] || [[ $NODE_RANK -ge $nodes ]]; then
        echo "error: NODE_RANK=$NODE_RANK must be 0..$((nodes - 1))" >&2
        exit 2
    fi
    cluster=(--worker_num="$((nodes * npus))" --local_worker_num="$npus"
             --master_addr="$MASTER_ADDR" --node_rank="$NODE_RANK")
    log_dir=$log_dir/node$NODE_RANK  # scheduler and worker logs of every machine kept apart
fi

if [[ ${RESUME:-0} == 1 ]]; then
    train_args=(train --resume "$run_dir" --device Ascend "$@")  # the saved config names data and output
elif [[ -n $data ]]; then
    train_args=(train "$data" --device Ascend -o "$run_dir" "$@")
else
    train_args=(train --device Ascend -o "$run_dir" "$@")  # data from --images/--masks or --config
fi

command=("$msrun" "${cluster[@]}" --master_port="$port" --log_dir="$log_dir" --join=True
         "$roadseg" "${train_args[@]}")
printf '%q ' "${command[@]}"
echo
if [[ ${DRY_RUN:-0} == 1 ]]; then
    exit 0
fi
mkdir -p "$log_dir"
exec "${command[@]}"
