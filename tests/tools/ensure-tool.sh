#!/bin/sh
# ensure-tool.sh BINARY PACKAGE: make sure BINARY exists for the integration tests that drive it
# (nginx for tests/core/test_uwsgi_nginx.py, h2load from nghttp2-client for tests/http2/,
# redis-server for the stash-on-Redis tests in tests/dirty/).
#
# Installs the Debian package PACKAGE with apt-get when BINARY is missing and we are root. Never
# fails the build: when it cannot be installed it says why, and the tests that need it skip with
# that reason. Exit status is always 0.
binary=${1:?usage: ensure-tool.sh BINARY PACKAGE}
package=${2:?usage: ensure-tool.sh BINARY PACKAGE}
log=/tmp/ensure-$binary.log

found() {
    for candidate in "$binary" "/usr/sbin/$binary" "/usr/local/sbin/$binary" "/usr/local/bin/$binary"; do
        if command -v "$candidate" >/dev/null 2>&1; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

if where=$(found); then
    echo "ensure-tool: found $where"
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "ensure-tool: $binary is not installed and we are not root; the tests that need it will" \
         "skip (install the Debian package '$package' to run them)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-tool: $binary is not installed and apt-get is not available; the tests that" \
         "need it will skip"
    exit 0
fi

echo "ensure-tool: installing the Debian package $package"
# A package's post-install script may start a system-wide service (nginx on port 80);
# policy-rc.d (exit 101) forbids that: the tests run their own instances on free ports.
policy=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && made_policy=1
fi
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$package" \
        >"$log" 2>&1; then
    # The package lists may be missing or stale (fresh container): refresh once and retry.
    apt-get update -q >>"$log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$package" \
        >>"$log" 2>&1
fi
[ -n "$made_policy" ] && rm -f "$policy"

if where=$(found); then
    echo "ensure-tool: installed $where"
else
    echo "ensure-tool: could not install $package (see $log); the tests that need $binary will skip"
fi
exit 0
