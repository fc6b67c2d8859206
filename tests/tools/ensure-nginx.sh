#!/bin/sh
# Make sure an nginx binary exists for the uwsgi integration tests (tests/core/test_uwsgi_nginx.py).
#
# Installs the Debian package `nginx` with apt-get when it is missing and we are root. Never
# fails the build: when nginx cannot be installed it says why, and the nginx tests skip with
# that reason. Exit status is always 0.

for candidate in nginx /usr/sbin/nginx /usr/local/sbin/nginx /usr/local/nginx/sbin/nginx; do
    if command -v "$candidate" >/dev/null 2>&1; then
        echo "ensure-nginx: found $(command -v "$candidate")"
        exit 0
    fi
done

if [ "$(id -u)" != "0" ]; then
    echo "ensure-nginx: nginx is not installed and we are not root; the nginx tests will skip" \
         "(install the Debian package 'nginx' to run them)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-nginx: nginx is not installed and apt-get is not available; the nginx tests" \
         "will skip"
    exit 0
fi

echo "ensure-nginx: installing the Debian package nginx"
# The package's post-install script starts a system-wide nginx on port 80; policy-rc.d (exit
# 101) forbids that, the tests run their own instances on free ports.
policy=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && made_policy=1
fi
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx \
        >/tmp/ensure-nginx.log 2>&1; then
    # The package lists may be missing or stale (fresh container): refresh once and retry.
    apt-get update -q >>/tmp/ensure-nginx.log 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx \
        >>/tmp/ensure-nginx.log 2>&1
fi
[ -n "$made_policy" ] && rm -f "$policy"

if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    echo "ensure-nginx: installed nginx"
else
    echo "ensure-nginx: could not install nginx (see /tmp/ensure-nginx.log); the nginx tests" \
         "will skip"
fi
exit 0
