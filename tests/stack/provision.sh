#!/usr/bin/env bash
# Provision the real servers the tests start on loopback (see tests/stack/):
#   - PostgreSQL and Prometheus from Debian's packages (apt), only when their binaries are missing;
#   - Java and Maven (apt) when missing, then Apache Kafka's jars from Maven Central, through
#     tests/stack/kafka-pom.xml, into ${MRR_STACK_CACHE:-$HOME/.cache/mrr-ledger}/kafka-<ver>/libs.
# Idempotent: a second run only checks that everything is there (well under a second).
# Nothing is written inside the repository.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="$here/kafka-pom.xml"
cache="${MRR_STACK_CACHE:-$HOME/.cache/mrr-ledger}"
# The POM is the one place the Kafka version is written; tests/stack/kafka.py reads it there too.
kafka_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom" | head -n1)"
[ -n "$kafka_version" ] || { echo "provision: no <kafka.version> in $pom" >&2; exit 1; }
libs="$cache/kafka-$kafka_version/libs"

log() { echo "provision: $*" >&2; }

have_postgres() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }

apt_packages=()
have_postgres || apt_packages+=(postgresql)
{ command -v prometheus >/dev/null && command -v promtool >/dev/null; } || apt_packages+=(prometheus)
command -v java >/dev/null || apt_packages+=(default-jre-headless)
if [ ! -f "$libs/.complete" ] && ! command -v mvn >/dev/null; then apt_packages+=(maven); fi

if [ "${#apt_packages[@]}" -gt 0 ]; then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { log "need root (or sudo) to install: ${apt_packages[*]}"; exit 1; }
        sudo=(sudo)
    fi
    log "installing ${apt_packages[*]} (apt)"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        "${apt_packages[@]}" >/dev/null
fi

have_postgres || { log "PostgreSQL binaries not found under /usr/lib/postgresql/*/bin"; exit 1; }
command -v prometheus >/dev/null || { log "prometheus not found after install"; exit 1; }

if [ ! -f "$libs/.complete" ]; then
    log "fetching Apache Kafka $kafka_version jars (Maven Central) into $libs"
    tmp="$libs.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    trap 'rm -rf "$tmp"' EXIT
    # A local repository inside the cache: deleting the cache dir really starts from nothing.
    if ! mvn -q -B -f "$pom" -Dmaven.repo.local="$cache/m2" -Dkafka.version="$kafka_version" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" \
        >"$tmp/mvn.log" 2>&1; then
        cat "$tmp/mvn.log" >&2
        log "maven could not fetch Apache Kafka $kafka_version (output above)"
        exit 1
    fi
    rm -f "$tmp/mvn.log"
    ls "$tmp"/kafka_2.13-"$kafka_version".jar >/dev/null
    touch "$tmp/.complete"
    rm -rf "$libs"
    mv "$tmp" "$libs"
    trap - EXIT
fi

log "ok: kafka $kafka_version ($libs), postgres $(ls /usr/lib/postgresql | sort -V | tail -n1), $(prometheus --version 2>&1 | head -n1)"
