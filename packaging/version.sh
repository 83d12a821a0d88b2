#!/bin/sh
# Prints the package version, made from `git describe` so that it is valid
# for both dpkg and rpm (no "-", and "~" sorts a pre-release first):
#   v1.2.0                    -> 1.2.0
#   v1.2.0-3-gabc1234         -> 1.2.0+git3.gabc1234
#   v1.3.0-rc1                -> 1.3.0~rc1
#   no tag yet, 10 commits    -> 0.0~git10.gabc1234
#   uncommitted changes       -> ... + ".dirty" (or "+dirty")
# The package release ("-1" for Debian) is nfpm's, not part of this string.
set -eu
cd "$(dirname "$0")/.."
desc=$(git describe --tags --long --always --dirty --match 'v[0-9]*' 2>/dev/null) || {
	echo 0.0~unknown
	exit 0
}
dirty=
case $desc in *-dirty) dirty=1 desc=${desc%-dirty} ;; esac
if expr "$desc" : 'v[0-9].*-[0-9][0-9]*-g[0-9a-f]*$' >/dev/null; then
	hash=${desc##*-g}
	rest=${desc%-g*}
	count=${rest##*-}
	tag=${rest%-*}
	v=$(printf '%s' "${tag#v}" | tr '-' '~')
	[ "$count" = 0 ] || v="$v+git$count.g$hash"
else
	v="0.0~git$(git rev-list --count HEAD).g$desc"
fi
if [ -n "$dirty" ]; then
	case $v in *+*) v="$v.dirty" ;; *) v="$v+dirty" ;; esac
fi
echo "$v"
