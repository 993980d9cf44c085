#!/usr/bin/env bash
#SBATCH --job-name=roadseg-predict
#SBATCH --array=0-7
#SBATCH --cpus-per-task=8
#SBATCH --mem=16G
#SBATCH --time=04:00:00
#SBATCH --output=logs/roadseg-predict_%A_%a.log
# Road masks for a directory of imagery as a SLURM array job: task i of N predicts every N-th file.
#
# Usage:
#   mkdir -p logs && sbatch examples/predict_slurm_array.sh INPUT_DIR OUTPUT_DIR [more `roadseg predict` options...]
#   e.g. sbatch --array=0-31 examples/predict_slurm_array.sh /data/scenes /data/roads --save-prob --cog
#
#   INPUT_DIR   imagery (GeoTIFF, JPG, PNG; add --recursive for subdirectories). Every task lists it the
#               same way, sorted, and takes its share (`roadseg predict --shard K/N`: the K-th of N
#               shares, K counted from 1, every N-th file), so the shares are disjoint and cover it all.
#   OUTPUT_DIR  <stem>_mask.tif per GeoTIFF (<id>_mask.png per JPG/PNG), and
#               OUTPUT_DIR/summaries/task_<K>_of_<N>.json: the task's `--json` summary
#   the rest    passed to `roadseg predict` unchanged (--weights, --tta, --device, --window, ...)
#
# Task i of the array (counted from 0) takes shard K = i + 1 of N = SHARDS, by default the array's
# size (SLURM_ARRAY_TASK_COUNT), so the array must start at 0. Add `#SBATCH --gres=gpu:1` (and
# `--device gpu`) for GPUs. Set up the environment that holds roadseg before sbatch (sbatch passes it on)
# or set ROADSEG=/full/path/roadseg. DRY_RUN=1 only prints the command.
#
# Resuming: predict skips outputs that already exist (each is written under a temporary name and then
# renamed, so a killed task leaves no half file). A task exits 1 when any of its inputs failed and its
# summary names them under "failed"; rerun just the failed or timed-out tasks with the full count fixed:
#   SHARDS=8 sbatch --array=3,5 examples/predict_slurm_array.sh INPUT_DIR OUTPUT_DIR ...   # shards 4/8, 6/8
#
# Afterwards, a job that starts once every task succeeded (outputs in a subfolder, out of the globs' way):
#   jid=$(sbatch --parsable examples/predict_slurm_array.sh /data/scenes /data/roads --save-prob)
#   sbatch --dependency=afterok:$jid --job-name=roadseg-vectorize --cpus-per-task=4 --mem=32G --wrap \
#       "roadseg stitch /data/roads/*_mask.tif -o /data/roads/mosaic/mask.vrt --vrt &&
#        roadseg stitch /data/roads/*_prob.tif -o /data/roads/mosaic/prob.vrt --vrt &&
#        roadseg vectorize /data/roads/*_mask.tif -o /data/roads/mosaic/roads.geojson \
#            --graph /data/roads/mosaic/roads.graphml"
#   - roadseg stitch: one mosaic of the tile masks (road wins) and of the probability maps (mean);
#     --vrt writes a GDAL VRT that references the tiles, copying nothing; leave it out for a GeoTIFF, and
#     give --crs EPSG:XXXX --res METRES for tiles in different CRSs.
#   - roadseg vectorize: centrelines as GeoJSON in EPSG:4326; tiles of one area on one pixel grid are
#     mosaicked first, so a road crossing tile edges is one line; --graph also writes the GraphML graph.
#   With `afterok`, one failed task holds the follow-up job back (squeue shows DependencyNeverSatisfied):
#   rerun that task as above, then submit the follow-up job again.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    sed -n '/^# Road masks/,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
input_dir=$1
output_dir=$2
shift 2

task_id=${SLURM_ARRAY_TASK_ID:?not in a SLURM array job: submit with sbatch (or set SLURM_ARRAY_TASK_ID)}
if [[ -n ${SHARDS:-} ]]; then
    n=$SHARDS
else
    n=${SLURM_ARRAY_TASK_COUNT:?not in a SLURM array job: SLURM_ARRAY_TASK_COUNT is unset (or set SHARDS)}
    if [[ ${SLURM_ARRAY_TASK_MIN:-0} != 0 ]]; then
        echo "error: the array starts at ${SLURM_ARRAY_TASK_MIN}: use --array=0-$((n - 1)), or set SHARDS=N" >&2
        exit 2
    fi
fi
if ! [[ $task_id =~ ^[0-9]+$ && $n =~ ^[1-9][0-9]*$ ]] || [[ $task_id -ge $n ]]; then
    echo "error: array task $task_id is not one of 0..$((n - 1)) (N = $n shards)" >&2
    exit 2
fi
k=$((task_id + 1))

roadseg=${ROADSEG:-$(command -v roadseg || true)}
if [[ -z $roadseg ]]; then
    echo "error: roadseg not found; activate its environment before sbatch or set ROADSEG=/full/path/roadseg" >&2
    exit 2
fi

summary=$output_dir/summaries/task_${k}_of_${n}.json
command=("$roadseg" predict "$input_dir" -o "$output_dir" --shard "$k/$n" --quiet --json "$@")
printf '%q ' "${command[@]}"
printf '> %q\n' "$summary"
if [[ ${DRY_RUN:-0} == 1 ]]; then
    exit 0
fi
mkdir -p "$output_dir/summaries"
"${command[@]}" > "$summary"
