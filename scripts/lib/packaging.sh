# Shared by scripts/package.sh and scripts/install.sh (sourced, not run).

# The cargo target directory (CARGO_TARGET_DIR, build.target-dir or ./target).
target_dir() {
  cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}

# gen_assets BIN DIR: the files generated from the CLI definition by BIN
# itself, so they match it: DIR/man/*.1.gz (one page per command, gzip -9n
# as Debian policy asks) and DIR/completions/{proxyha.bash,_proxyha,proxyha.fish}.
gen_assets() {
  local bin=$1 dir=$2
  rm -rf "$dir"
  mkdir -p "$dir/man" "$dir/completions"
  "$bin" manpages "$dir/man" >/dev/null
  gzip -9n "$dir"/man/*.1
  "$bin" completions bash > "$dir/completions/proxyha.bash"
  "$bin" completions zsh > "$dir/completions/_proxyha"
  "$bin" completions fish > "$dir/completions/proxyha.fish"
}
