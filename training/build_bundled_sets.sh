#!/usr/bin/env bash
# Build the sets the bundled CRNNs were last trained, tuned and checked on, from ../shared/data
# and the corpora that training/extract_corpora.sh extracts.
#
#   training/build_bundled_sets.sh CORPORA_DIR OUT_DIR
#
# CORPORA_DIR is extract_corpora.sh's OUT_DIR (speech/ and noise/ in it). OUT_DIR gets
# mix8k_v9 and mix16k_v3 (20000 training pairs each), tune8k_v1 and tune16k_v1 (80 pairs,
# for choosing options) and dev8k_v6 and dev16k_v1 (200 pairs, for reporting), the last four
# from held-aside speakers and noise recordings only. Run from the repository root;
# PYTHON (default: python) is the interpreter with the toolkit installed. About 12 minutes
# on 2 cores.
set -euo pipefail

if [ $# -ne 2 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  [ $# -eq 2 ] && exit 0 || exit 2
fi
raw=$1
out=$2
py=${PYTHON:-python}
for d in "$raw/speech" "$raw/noise" ../shared/data/speech_8k ../shared/data/speech_16k ../shared/data/noise_16k; do
  [ -d "$d" ] || { echo "error: $d is not a directory (run from the repository root, after extract_corpora.sh)" >&2; exit 1; }
done

# the speaker (or noise-source) id of each file name, so that no speaker is in two splits
RX='^([0-9]+)-[0-9]+-[0-9]+$|^([0-9]+)-[0-9]+-[0-9]+-[0-9]+$|^[0-9]-([0-9]+)-[A-Z]|^0([0-9]{4})[0-9]{4}$|^([0-9]{2})[a-z][0-9]{2}[A-Z][a-z]$|_([a-z]+)_'
SRC=(--clean ../shared/data/speech_8k ../shared/data/speech_16k "$raw/speech" --noise ../shared/data/noise_16k "$raw/noise"
     --seconds 4 --balance-speakers --dev-fraction 0.1 --group-regex "$RX")
SRC16=("${SRC[@]}" --sample-rate 16000)
MIX=(--snr-min -5 --snr-max 25 --snr-weighting low --speech-dbfs -50 -10 --generated-noise 0.3 --more-noise-kinds
     --augment-noise --colour-speech 0.3 --second-noise 0.3 --noise-speed 0.3 --reverb 0.4 --channel 0.4
     --clipping 0.05 --noise-events 0.3 --crowd 0.1)
DEV=(--snr-values=-5,0,5,10,15 --generated-noise 0.3 --more-noise-kinds --only-split dev)

"$py" -m training.make_dataset "${SRC[@]}" --out "$out/tune8k_v1" --count 80 "${DEV[@]}" --seed 2000 --jobs 2
"$py" -m training.make_dataset "${SRC16[@]}" --out "$out/tune16k_v1" --count 80 "${DEV[@]}" --seed 2000 --jobs 2
"$py" -m training.make_dataset "${SRC[@]}" --out "$out/mix8k_v9" --count 20000 "${MIX[@]}" --seed 71 --jobs 2
"$py" -m training.make_dataset "${SRC16[@]}" --out "$out/mix16k_v3" --count 20000 "${MIX[@]}" --seed 72 --jobs 2
"$py" -m training.make_dataset "${SRC[@]}" --out "$out/dev8k_v6" --count 200 "${DEV[@]}" --seed 1000 --jobs 2
"$py" -m training.make_dataset "${SRC16[@]}" --out "$out/dev16k_v1" --count 200 "${DEV[@]}" --seed 1000 --jobs 2
