#!/bin/sh
# benchapp launcher (shipped from bench/files/run.sh)
set -eu
. /opt/bench/conf/service.env
exec /opt/bench/bin/benchapp --config /opt/bench/conf/app.ini "$@"
