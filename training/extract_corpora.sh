#!/usr/bin/env bash
# Extract the public training corpora of the bundled models from bare git mirrors.
#
#   training/extract_corpora.sh MIRROR_ROOT OUT_DIR
#
# MIRROR_ROOT holds one git directory per repository, named OWNER+NAME (as the toolkit's
# maintainers fetch them; `git clone --bare https://github.com/OWNER/NAME MIRROR_ROOT/OWNER+NAME`
# gives the same). Each corpus is taken at a pinned commit so the training set can be rebuilt
# exactly. Only training material is extracted: UrbanSound8K folds 1-3 only, and
# the speakers of speechocean762's train split; the evaluation speakers are left out.
# ESC-10 clips that are also in the ESC-50 copy are dropped (same clip id: ESC-10 1-100032-A
# is ESC-50 1-100032-A-0).
set -euo pipefail

if [ $# -ne 2 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  [ $# -eq 2 ] && exit 0 || exit 2
fi
mirrors=$1
out=$2

gitdir() {  # the git directory of OWNER+NAME: a bare repo, or a clone's .git
  local d="$mirrors/$1"
  for c in "$d" "$d/repo" "$d/repo/.git" "$d/.git"; do
    if [ -f "$c/HEAD" ] && [ -d "$c/objects" ]; then echo "$c"; return; fi
  done
  echo "error: no git directory for $1 under $mirrors" >&2
  exit 1
}

extract() {  # OWNER+NAME COMMIT DEST PATH...
  local repo=$1 commit=$2 dest=$3; shift 3
  mkdir -p "$dest"
  # (a mirror without some unrelated large blobs makes git warn about them; the paths asked
  # for are complete or tar fails)
  git --git-dir "$(gitdir "$repo")" archive "$commit" "$@" 2>/dev/null | tar -x -C "$dest"
}

# Speech: LibriSpeech (251 speakers, one utterance each)
extract resemble-ai+Resemblyzer 15d828edebe06bc72b9cabc8ef8ca5ab2cb457ce "$out/speech/librispeech" \
  audio_data/librispeech_train-clean-100

# Speech: speechocean762, train-split speakers only (their list comes from train/spk2utt)
so=$(gitdir jimbozhang+speechocean762)
so_commit=613968e3b0b789fc33936fb5eba1973176ba7d11
speakers=$(git --git-dir "$so" show "$so_commit:train/spk2utt" | awk '{print "WAVE/SPEAKER" $1}')
# shellcheck disable=SC2086
extract jimbozhang+speechocean762 "$so_commit" "$out/speech/speechocean762" $speakers

# Noise: UrbanSound8K folds 1-3, ESC-50, ESC-10 without the clips ESC-50 already has
extract Alejandro-131004+AC-II 8f8b8f279a1f8b240a3b3019191229c225793e7a "$out/noise/urbansound8k" \
  UrbanSound8K/audio/fold1 UrbanSound8K/audio/fold2 UrbanSound8K/audio/fold3
extract caitlinnguyen0+ESC-50 7085beb71d02eb515b8bad56ad2a29e8fa0dcd08 "$out/noise/esc50" audio
esc10=$(gitdir karoldvl+ESC-10)
esc10_commit=553c8f1743b9dba6b282e1323c3ca8fa76923448
mapfile -t classes < <(git --git-dir "$esc10" ls-tree -d --name-only "$esc10_commit")
extract karoldvl+ESC-10 "$esc10_commit" "$out/noise/esc10" "${classes[@]}"
dups=0
while IFS= read -r f; do
  id=$(basename "$f"); id=${id%.*}
  if compgen -G "$out/noise/esc50/audio/$id-*" >/dev/null; then rm "$f"; dups=$((dups + 1)); fi
done < <(find "$out/noise/esc10" -type f -iname '*.ogg')

count() { find "$1" -type f \( -iname '*.wav' -o -iname '*.flac' -o -iname '*.ogg' \) | wc -l; }
echo "librispeech: $(count "$out/speech/librispeech") files"
echo "speechocean762 (train speakers): $(count "$out/speech/speechocean762") files"
echo "urbansound8k folds 1-3: $(count "$out/noise/urbansound8k") files"
echo "esc50: $(count "$out/noise/esc50") files"
echo "esc10 without the $dups clips also in esc50: $(count "$out/noise/esc10") files"
