# Shared by provision-node.sh and provision-hub.sh (sourced, not run).
#
# Every step checks what is already there, so running a script again changes only what
# differs (and says so: "unchanged" / "updated" / "created"). With --root DIR the
# scripts install into DIR as if it were /: every file goes under DIR, the virtualenv
# is really built there (so the package really installs), and the commands that would
# change the machine outside DIR (apt-get, useradd, usermod, chown, raspi-config,
# systemctl) are not run but written, one per line, to DIR/var/log/fabgate-provision.log.
# That is how CI checks both scripts in a throwaway root without touching the machine.

ROOT=""
SOURCE=""
EXTRAS=""
POSITIONAL=()
CHANGED=0

die() { echo "${PROG}: $*" >&2; exit 1; }
step() { echo "==> $*"; }

parse_common_args() {
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --root) [[ $# -ge 2 ]] || die "--root needs a directory"; ROOT="$(realpath -m "$2")"; shift 2 ;;
            --root=*) ROOT="$(realpath -m "${1#--root=}")"; shift ;;
            --from) [[ $# -ge 2 ]] || die "--from needs wheel:PATH, checkout:PATH or index[:SPEC]"; SOURCE="$2"; shift 2 ;;
            --from=*) SOURCE="${1#--from=}"; shift ;;
            --extras) [[ $# -ge 2 ]] || die "--extras needs a list such as node,pi"; EXTRAS="$2"; shift 2 ;;
            --extras=*) EXTRAS="${1#--extras=}"; shift ;;
            -h|--help) usage; exit 0 ;;
            --*) parse_extra_arg "$@" || die "unknown option $1 (see --help)"; shift "${EXTRA_SHIFT:-1}" ;;
            *) POSITIONAL+=("$1"); shift ;;
        esac
    done
    if [[ -z ${ROOT} && ${EUID} -ne 0 ]]; then
        die "run as root (sudo), or with --root DIR to install into a throwaway root"
    fi
    if [[ -n ${ROOT} ]]; then
        mkdir -p "${ROOT}/var/log"
        : > "${ROOT}/var/log/fabgate-provision.log"
    fi
}

# A path on the target system, under --root when one is given.
target() { echo "${ROOT}$1"; }

# Run a command that changes the machine outside the target tree; under --root, record it.
system() {
    if [[ -n ${ROOT} ]]; then
        printf '%s\n' "$*" >> "${ROOT}/var/log/fabgate-provision.log"
    else
        "$@"
    fi
}

# install_file SRC DEST MODE OWNER:GROUP — copy when missing or different; say which.
install_file() {
    local src="$1" dest owner="$4" mode="$3"
    dest="$(target "$2")"
    mkdir -p "$(dirname "${dest}")"
    if [[ -f ${dest} ]] && cmp -s "${src}" "${dest}"; then
        echo "    unchanged ${2}"
    else
        local what="updated"
        [[ -e ${dest} ]] || what="created"
        install -m "${mode}" "${src}" "${dest}"
        echo "    ${what} ${2}"
        CHANGED=1
    fi
    chmod "${mode}" "${dest}"
    system chown "${owner}" "$2"
}

# install_dir PATH MODE OWNER:GROUP
install_dir() {
    mkdir -p "$(target "$1")"
    chmod "$2" "$(target "$1")"
    system chown "$3" "$1"
}

apt_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        if [[ -n ${ROOT} ]] || ! dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("${pkg}")
        fi
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        system apt-get update
        system apt-get install -y "${missing[@]}"
    fi
}

service_user() {
    local user="$1" home="$2"
    shift 2
    if [[ -n ${ROOT} ]] || ! id -u "${user}" >/dev/null 2>&1; then
        system useradd --system --user-group --home-dir "${home}" --no-create-home \
            --shell /usr/sbin/nologin "${user}"
    fi
    local group
    for group in "$@"; do
        if [[ -n ${ROOT} ]] || getent group "${group}" >/dev/null; then
            system usermod -a -G "${group}" "${user}"
        fi
    done
}

# What pip installs: --from wheel:PATH | checkout:PATH | index[:SPEC]. Without --from,
# the newest wheel in the checkout's dist/ (python3 scripts/bootstrap.py wheel), else
# the checkout itself: the package is not on the index yet.
package_spec() {
    local checkout="$1" extras="$2" kind path
    if [[ -z ${SOURCE} ]]; then
        path="$(ls -1t "${checkout}"/dist/fablab_gateway-*.whl 2>/dev/null | head -n 1 || true)"
        if [[ -n ${path} ]]; then SOURCE="wheel:${path}"; else SOURCE="checkout:${checkout}"; fi
    fi
    kind="${SOURCE%%:*}"
    path="${SOURCE#*:}"
    [[ ${SOURCE} == *:* ]] || path=""
    case "${kind}" in
        wheel)
            [[ -f ${path} && ${path} == *.whl ]] || die "--from wheel:${path}: no such wheel file"
            echo "fablab-gateway[${extras}] @ file://$(realpath "${path}")" ;;
        checkout)
            [[ -f ${path}/pyproject.toml ]] || die "--from checkout:${path}: no pyproject.toml there"
            echo "fablab-gateway[${extras}] @ file://$(realpath "${path}")" ;;
        index)
            echo "fablab-gateway[${extras}]${path:+==${path}}" ;;
        *) die "--from ${SOURCE}: expected wheel:PATH, checkout:PATH or index[:VERSION]" ;;
    esac
}

install_package() {
    local venv="$1" spec="$2" real_venv before after
    real_venv="$(target "${venv}")"
    if [[ ! -x ${real_venv}/bin/python ]]; then
        mkdir -p "$(dirname "${real_venv}")"
        python3 -m venv "${real_venv}"
        echo "    created ${venv}"
    fi
    before="$("${real_venv}/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null | sort | sha256sum)"
    "${real_venv}/bin/python" -m pip install --quiet --disable-pip-version-check \
        --upgrade "${spec}"
    after="$("${real_venv}/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null | sort | sha256sum)"
    if [[ ${before} == "${after}" ]]; then
        echo "    unchanged $("${real_venv}/bin/fabgate" --version) in ${venv}"
    else
        echo "    installed $("${real_venv}/bin/fabgate" --version) in ${venv}"
        CHANGED=1
    fi
}

# enable_unit NAME [restart]: reload, enable, and restart when a file changed.
enable_unit() {
    system systemctl daemon-reload
    system systemctl enable "$1"
    if [[ ${2:-} == restart || ${CHANGED} -eq 1 ]]; then
        system systemctl restart "$1"
    else
        system systemctl start "$1"
    fi
}
