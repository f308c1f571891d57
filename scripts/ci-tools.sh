#!/usr/bin/env bash
# CI: install the tools tests/deploy uses, from Debian's packages, when they are missing:
#   ShellCheck   lints scripts/*.sh (package shellcheck)
#   caddy        `caddy adapt` reads config/examples/Caddyfile
#   compose v2   `docker compose config -q` on every compose file
# Compose v2: Debian has no docker-compose-plugin; Debian 12's docker-compose is Compose v1
# (1.29), which rejects the Compose Specification's top-level `name:`. Debian 13's docker-compose
# is Compose v2 (a static Go binary, needs only libc >= 2.34), so on Debian 12 its package is
# fetched with apt-get from Debian 13's archive into a private apt directory (the system's sources
# and packages stay as they are) and its binary put where the docker CLI finds plugins.
# Every step is best-effort: a tool that cannot be had is reported, and the tests that need it
# say so when they skip. Safe to run again.
set -euo pipefail

PLUGIN_DIR=${DOCKER_CLI_PLUGIN_DIR:-/usr/local/lib/docker/cli-plugins}

have_compose_v2() {
	local cmd
	for cmd in "docker compose" "$PLUGIN_DIR/docker-compose" docker-compose; do
		# shellcheck disable=SC2086 # "docker compose" is two words on purpose
		if out=$($cmd version --short 2>/dev/null) && [[ $out =~ ^v?[2-9]\. ]]; then
			return 0
		fi
	done
	return 1
}

apt_updated=0
apt_install() {
	if ((!apt_updated)); then
		apt-get update -qq >/dev/null 2>&1 || true
		apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
}

for tool in shellcheck caddy; do
	if command -v "$tool" >/dev/null 2>&1; then
		echo "ci-tools: $tool present"
	elif apt_install "$tool"; then
		echo "ci-tools: installed $tool"
	else
		echo "ci-tools: could not install $tool from Debian's packages"
	fi
done

if have_compose_v2; then
	echo "ci-tools: compose v2 present"
	exit 0
fi
# Debian 13 and later: the distribution's own package is Compose v2.
if [[ $(apt-cache policy docker-compose 2>/dev/null) =~ Candidate:\ ([0-9]+)\. ]] &&
	((BASH_REMATCH[1] >= 2)) && apt_install docker-compose && have_compose_v2; then
	echo "ci-tools: installed docker-compose (v2) from Debian"
	exit 0
fi
# Debian 12: Debian 13's package, unpacked.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/x"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
	>"$work/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root)
if apt-get "${apt_opts[@]}" update -qq >/dev/null 2>&1 &&
	(cd "$work" && apt-get "${apt_opts[@]}" download docker-compose >/dev/null 2>&1) &&
	dpkg-deb -x "$work"/docker-compose_*.deb "$work/x" &&
	install -D -m 0755 "$work/x/usr/libexec/docker/cli-plugins/docker-compose" "$PLUGIN_DIR/docker-compose" &&
	have_compose_v2; then
	echo "ci-tools: installed compose v2 ($("$PLUGIN_DIR/docker-compose" version --short)) from Debian 13's docker-compose"
else
	echo "ci-tools: no compose v2 to be had; tests/deploy/test_compose.py skips its 'docker compose config' checks"
fi
