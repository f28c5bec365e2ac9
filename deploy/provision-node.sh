#!/usr/bin/env bash
# Provision a Raspberry Pi as a fablab-gateway node. Safe to run again: every step
# checks what is already there, so re-running it upgrades the package and reinstalls
# the config, the hub key and the service.
#
# usage: sudo deploy/provision-node.sh NODE_YAML HUB_PUBLIC_KEY
#   NODE_YAML       this node's configuration (e.g. config/nodes/laser-1.yaml, edited)
#   HUB_PUBLIC_KEY  the hub's hub-signing.pub, written by `fabgate keygen` on the hub
#
# Environment: FABGATE_PACKAGE overrides what pip installs (default
# 'fablab-gateway[node,pi]'; e.g. a wheel file or 'fablab-gateway[node,pi]==0.1.0').
set -euo pipefail

readonly SERVICE_USER=fabgate
readonly ETC_DIR=/etc/fabgate
readonly STATE_DIR=/var/lib/fabgate
readonly VENV=/opt/fabgate/venv
readonly PACKAGE="${FABGATE_PACKAGE:-fablab-gateway[node,pi]}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HERE

die() { echo "provision-node: $*" >&2; exit 1; }
step() { echo "==> $*"; }

[[ $# -eq 2 ]] || die "usage: sudo $0 NODE_YAML HUB_PUBLIC_KEY"
[[ ${EUID} -eq 0 ]] || die "run as root (sudo)"
readonly NODE_YAML="$1" HUB_KEY="$2"
[[ -f ${NODE_YAML} ]] || die "no such file: ${NODE_YAML}"
[[ -f ${HUB_KEY} ]] || die "no such file: ${HUB_KEY}"
grep -q "BEGIN PUBLIC KEY" "${HUB_KEY}" || die "${HUB_KEY} is not a PEM public key (the .pub file, never the hub's .pem private key)"
[[ -f ${HERE}/systemd/fabgate-node.service ]] || die "run from a checkout: ${HERE}/systemd/fabgate-node.service is missing"

step "system packages"
missing=()
for pkg in python3-venv python3-dev; do
    dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("${pkg}")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    apt-get update
    apt-get install -y "${missing[@]}"
fi

step "SPI interface (RC522 reader)"
if command -v raspi-config >/dev/null 2>&1; then
    # 0 means "enable" for raspi-config's non-interactive mode; a no-op when already on.
    raspi-config nonint do_spi 0
else
    echo "raspi-config not found: enable SPI yourself (dtparam=spi=on)"
fi

step "service user ${SERVICE_USER}"
if ! id -u "${SERVICE_USER}" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir "${STATE_DIR}" --no-create-home \
        --shell /usr/sbin/nologin "${SERVICE_USER}"
fi
for group in gpio spi; do
    if getent group "${group}" >/dev/null; then
        usermod -a -G "${group}" "${SERVICE_USER}"
    fi
done

step "directories"
install -d -o root -g "${SERVICE_USER}" -m 0750 "${ETC_DIR}"
install -d -o "${SERVICE_USER}" -g "${SERVICE_USER}" -m 0750 "${STATE_DIR}"
install -d -o root -g root -m 0755 "$(dirname "${VENV}")"

step "virtualenv ${VENV} with ${PACKAGE}"
if [[ ! -x ${VENV}/bin/python ]]; then
    python3 -m venv "${VENV}"
fi
"${VENV}/bin/pip" install --quiet --upgrade pip
"${VENV}/bin/pip" install --quiet --upgrade "${PACKAGE}"

step "configuration and hub public key in ${ETC_DIR}"
# The node config holds the node's MQTT password: readable by the service, not by all.
install -o root -g "${SERVICE_USER}" -m 0640 "${NODE_YAML}" "${ETC_DIR}/node.yaml"
install -o root -g "${SERVICE_USER}" -m 0644 "${HUB_KEY}" "${ETC_DIR}/hub-signing.pub"
"${VENV}/bin/fabgate" check-config "${ETC_DIR}/node.yaml"

step "systemd service"
install -o root -g root -m 0644 "${HERE}/systemd/fabgate-node.service" \
    /etc/systemd/system/fabgate-node.service
systemctl daemon-reload
systemctl enable fabgate-node.service
systemctl restart fabgate-node.service
systemctl --no-pager --lines=5 status fabgate-node.service || true

echo "provision-node: done. Logs: journalctl -u fabgate-node -f"
