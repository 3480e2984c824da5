#!/usr/bin/env bash
# Resolve the Apache Kafka broker's classpath (tools/kafka/pom.xml) into a cache, once.
#
#   tools/kafka/deps.sh          resolve if needed, print the cache directory (it holds lib/)
#   tools/kafka/deps.sh --print  print the cache directory only, resolve nothing
#
# The cache is $CXSTREAM_KAFKA_HOME if set, else ~/.cache/cxstream/kafka-<version>, the version
# being pom.xml's <kafka.version>. A lib/ with its .complete marker is reused as it is; it is
# built in a scratch directory and renamed, so an interrupted run leaves no half a classpath.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
home="${CXSTREAM_KAFKA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/cxstream/kafka-$version}"
if [ "${1:-}" = "--print" ]; then echo "$home"; exit 0; fi
if [ ! -f "$home/lib/.complete" ]; then
  command -v mvn >/dev/null 2>&1 || { echo "deps.sh: mvn not found (make kafka-deps installs it)" >&2; exit 1; }
  mkdir -p "$home"
  scratch="$(mktemp -d "$home/lib.partial.XXXXXX")"
  trap 'rm -rf "$scratch"' EXIT
  echo "resolving Apache Kafka $version's jars with Maven into $home/lib" >&2
  if ! mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
         -DoutputDirectory="$scratch" >"$scratch/.mvn.log" 2>&1; then
    cat "$scratch/.mvn.log" >&2
    exit 1
  fi
  rm -f "$scratch/.mvn.log"
  echo "$version" > "$scratch/.complete"
  rm -rf "$home/lib"
  mv "$scratch" "$home/lib"
  trap - EXIT
fi
echo "$home"
