#!/usr/bin/env bash
# Benchmark denoiser .tflite models on an Android device over adb with TFLite's benchmark_model,
# or on an ARM Linux board over ssh with python -m benchmarks.latency.
#
#   benchmarks/run_on_device.sh --benchmark-binary ./benchmark_model cr_ced_int8.tflite crnn_int8.tflite
#   benchmarks/run_on_device.sh --ssh pi@raspberrypi --remote-repo ~/tiny-denoise runtime/models/*.tflite
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: run_on_device.sh [-s SERIAL] [--threads N] [--use-xnnpack|--use-gpu|--use-nnapi]
                        [--benchmark-binary PATH] [--runs N] [--warmup N] [-o|--out DIR] MODEL ...
       run_on_device.sh --ssh USER@HOST [--remote-repo DIR] [--threads N] MODEL ...

Android (adb): pushes benchmark_model (the TFLite benchmark tool built for the device's ABI,
e.g. android_aarch64_benchmark_model) and the models to /data/local/tmp, runs each, and
writes per-frame latency and real-time factor to OUT (default benchmarks/results/) as CSV
and JSON. Everything pushed is removed afterwards.
ARM Linux (--ssh): copies the models to a board that has this repository installed with
the [runtime] extra and runs python -m benchmarks.latency there.
USAGE
}

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
serial="" threads=1 delegate="cpu" binary="${BENCHMARK_MODEL:-}" runs=200 warmup=50
out_dir="$repo/benchmarks/results" ssh_target="" remote_repo="~/tiny-denoise"
models=()
die() { echo "error: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    -s) serial="${2:?-s needs a serial}"; shift 2 ;;
    --threads) threads="${2:?--threads needs a number}"; shift 2 ;;
    --use-xnnpack) delegate="xnnpack"; shift ;;
    --use-gpu) delegate="gpu"; shift ;;
    --use-nnapi) delegate="nnapi"; shift ;;
    --benchmark-binary) binary="${2:?--benchmark-binary needs a path}"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    -o|--out) out_dir="${2:?--out needs a folder}"; shift 2 ;;
    --ssh) ssh_target="${2:?--ssh needs USER@HOST}"; shift 2 ;;
    --remote-repo) remote_repo="$2"; shift 2 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) models+=("$1"); shift ;;
  esac
done
[ ${#models[@]} -gt 0 ] || { usage >&2; die "no MODEL given"; }
for m in "${models[@]}"; do [ -f "$m" ] || die "$m: no such model file"; done
python="${PYTHON:-python3}"

if [ -n "$ssh_target" ]; then
  command -v ssh >/dev/null || die "ssh not found"
  remote_tmp="/tmp/tiny_denoise_bench_$$"
  ssh "$ssh_target" "mkdir -p $remote_tmp" || die "cannot reach $ssh_target over ssh"
  trap 'ssh "$ssh_target" "rm -rf $remote_tmp" >/dev/null 2>&1 || true' EXIT
  scp -q "${models[@]}" "$ssh_target:$remote_tmp/"
  names=(); for m in "${models[@]}"; do names+=("$remote_tmp/$(basename "$m")"); done
  ssh "$ssh_target" "cd $remote_repo && python3 -m benchmarks.latency ${names[*]} --threads $threads --no-peer --json $remote_tmp/latency.json"
  mkdir -p "$out_dir"
  scp -q "$ssh_target:$remote_tmp/latency.json" "$out_dir/latency_${ssh_target//[^A-Za-z0-9_.-]/_}.json"
  exit 0
fi

command -v adb >/dev/null || die "adb not found: install Android platform-tools (Debian: apt-get install adb)"
[ -n "$binary" ] || die "no benchmark_model binary: pass --benchmark-binary PATH (TFLite's benchmark tool for the device ABI)"
[ -f "$binary" ] || die "$binary: no such benchmark binary"

listing="$(adb devices)" || die "adb devices failed"
ready=$(printf '%s\n' "$listing" | awk 'NR>1 && $2=="device" {print $1}')
unauthorized=$(printf '%s\n' "$listing" | awk 'NR>1 && $2=="unauthorized" {print $1}')
if [ -n "$serial" ]; then
  printf '%s\n' "$unauthorized" | grep -qx -- "$serial" && die "device $serial is unauthorized: accept the USB debugging prompt on the phone"
  printf '%s\n' "$ready" | grep -qx -- "$serial" || die "device $serial is not connected (adb devices lists: ${ready:-none})"
else
  count=$(printf '%s\n' "$ready" | grep -c . || true)
  if [ "$count" -eq 0 ]; then
    [ -n "$unauthorized" ] && die "device $unauthorized is unauthorized: accept the USB debugging prompt on the phone"
    die "no adb device connected (adb devices lists none ready)"
  fi
  [ "$count" -eq 1 ] || die "$count devices connected ($(echo $ready)); choose one with -s SERIAL"
  serial="$ready"
fi
adb_() { adb -s "$serial" "$@"; }
prop() { adb_ shell getprop "$1" 2>/dev/null | tr -d '\r'; }

soc="$(prop ro.soc.model)"; [ -n "$soc" ] || soc="$(prop ro.board.platform)"
device_json="$(mktemp)"; logs_dir="$(mktemp -d)"
printf '{"serial": "%s", "device_model": "%s", "abi": "%s", "soc": "%s", "android": "%s"}\n' \
  "$serial" "$(prop ro.product.model)" "$(prop ro.product.cpu.abi)" "$soc" "$(prop ro.build.version.release)" > "$device_json"
echo "device: $(cat "$device_json")"

remote="/data/local/tmp/tiny_denoise_bench"
cleanup() { adb_ shell rm -rf "$remote" >/dev/null 2>&1 || true; rm -rf "$logs_dir" "$device_json"; }
trap cleanup EXIT
adb_ shell mkdir -p "$remote" >/dev/null
adb_ push "$binary" "$remote/benchmark_model" >/dev/null || die "pushing $binary failed"
adb_ shell chmod +x "$remote/benchmark_model" >/dev/null

flags="--num_threads=$threads --warmup_runs=$warmup --num_runs=$runs --use_xnnpack=false"
case "$delegate" in
  xnnpack) flags="--num_threads=$threads --warmup_runs=$warmup --num_runs=$runs --use_xnnpack=true" ;;
  gpu) flags="$flags --use_gpu=true" ;;
  nnapi) flags="$flags --use_nnapi=true" ;;
esac

pairs=(); status=0
for m in "${models[@]}"; do
  name="$(basename "$m")"
  adb_ push "$m" "$remote/$name" >/dev/null || die "pushing $m failed"
  log="$logs_dir/$name.log"
  if ! adb_ shell "$remote/benchmark_model" --graph="$remote/$name" $flags > "$log" 2>&1; then
    echo "error: benchmark_model failed on $name:" >&2; tail -n 5 "$log" >&2; status=1
  fi
  pairs+=("$m=$log")
done

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" "$python" -m benchmarks.device_report \
  --device-json "$device_json" --threads "$threads" --delegate "$delegate" \
  --out "$out_dir/device_${serial//[^A-Za-z0-9_.-]/_}_$stamp" "${pairs[@]}" || status=1
exit $status
