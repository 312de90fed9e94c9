#!/bin/sh
# bench/mpi_scale.sh — training throughput of data-parallel lstm train: one
# process with 1 and with 2 threads against 2 MPI ranks with 1 thread each
# (build/lstm-mpi under mpirun), the same flags and data; prints tokens/s and
# checks that all three wrote the same model bytes.
#
# usage: sh bench/mpi_scale.sh [--steps N] [-- EXTRA TRAIN FLAGS]
#   default: the built-in corpus, E 64, H 128, 2 layers, B 32, T 64, 300 steps.
#   env: BUILD (default build).  Needs mpirun (openmpi-bin); builds with make mpi.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
STEPS=300
while [ $# -gt 0 ]; do
    case $1 in
    --steps) STEPS=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "bench/mpi_scale.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
command -v mpirun >/dev/null 2>&1 || { echo "bench/mpi_scale.sh: mpirun not found (openmpi-bin)" >&2; exit 1; }
make -s BUILD="$BUILD" all mpi >/dev/null || { echo "bench/mpi_scale.sh: make mpi failed" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
FLAGS="--steps $STEPS --eval-every 0 --checkpoint-every 0 --val-fraction 0 $*"
tps() { sed -n 's/.*, \([0-9]*\) tokens\/s;.*/\1/p' "$1" | tail -n 1; }
echo "lstm train $FLAGS ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
"$BUILD/lstm" train $FLAGS --threads 1 --out "$T/p1.st" 2> "$T/p1.err" || { tail -n 1 "$T/p1.err"; exit 1; }
"$BUILD/lstm" train $FLAGS --threads 2 --out "$T/p2.st" 2> "$T/p2.err" || { tail -n 1 "$T/p2.err"; exit 1; }
mpirun -np 2 "$BUILD/lstm-mpi" train $FLAGS --threads 1 --out "$T/r2.st" > "$T/r2.err" 2>&1 || { tail -n 3 "$T/r2.err"; exit 1; }
printf '| run | tokens/s |\n|---|---|\n'
printf '| 1 process x 1 thread | %s |\n' "$(tps "$T/p1.err")"
printf '| 1 process x 2 threads | %s |\n' "$(tps "$T/p2.err")"
printf '| 2 ranks x 1 thread (mpirun -np 2) | %s |\n' "$(tps "$T/r2.err")"
if cmp -s "$T/p1.st" "$T/p2.st" && cmp -s "$T/p1.st" "$T/r2.st"; then echo "model files: identical"
else echo "model files: DIFFER" >&2; exit 1; fi
