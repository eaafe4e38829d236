#!/usr/bin/env bash
# Assembles the seed corpus of each fuzz target in fuzz/seed-corpus/<target>/ (ignored by git)
# from the one fixture tree: the files fuzz/seeds.list names (mostly under tests/fixtures/),
# each preceded by its prefix byte when it has one, plus fuzz/seeds/<target>/ (seeds that exist
# only for fuzzing). Seeds are copied, not kept in the repository twice.
#
#   fuzz/assemble-seeds.sh                  # every target named in seeds.list or fuzz/seeds/
#   fuzz/assemble-seeds.sh stix21 extract   # some targets
#
# Exits non-zero when seeds.list names a file that does not exist (a fixture was moved).
set -euo pipefail

fuzz="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$fuzz")"
list="$fuzz/seeds.list"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(
        { grep -v '^#' "$list" | awk 'NF { print $1 }'; ls "$fuzz/seeds"; } | sort -u
    )
fi

missing=0
for t in "${targets[@]}"; do
    out="$fuzz/seed-corpus/$t"
    rm -rf "$out"
    mkdir -p "$out"
    if [ -d "$fuzz/seeds/$t" ]; then
        cp "$fuzz/seeds/$t"/* "$out"/
    fi
    while read -r target prefix file; do
        [ "$target" = "$t" ] || continue
        if [ ! -f "$repo/$file" ]; then
            echo "seeds.list: $t: no such file: $file" >&2
            missing=1
            continue
        fi
        name="$(basename "$file")"
        if [ "$prefix" = "-" ]; then
            cp "$repo/$file" "$out/$name"
        else
            # The file name keeps the prefix visible: 0x37 + feodo.csv -> 37-feodo.csv.
            { printf "\\x${prefix#0x}"; cat "$repo/$file"; } >"$out/${prefix#0x}-$name"
        fi
    done < <(grep -v '^#' "$list")
    echo "$t: $(ls "$out" | wc -l) seeds"
done
exit "$missing"
