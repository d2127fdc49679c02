# Functions that bring up the services the tests need. Sourced by .ci/test; safe to source by hand.
# Each one: already reachable -> nothing; installed -> start; not installed -> apt-get install, then start.
# Each one fails loudly (exit 1, naming the service) when the service still does not answer.

die() { echo "ERROR: $*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for_port() { # name host port seconds
    local i
    for ((i = 0; i < $4 * 4; i++)); do
        port_open "$2" "$3" && return 0
        sleep 0.25
    done
    die "$1 is not reachable on $2:$3 after $4 s; the tests need it (see README.md, 'Running the tests')"
}

apt_install() {
    [ "$(id -u)" = 0 ] || die "$* is not installed and this is not root; install it: apt-get install $*"
    echo "==> installing $* with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed while installing $*"
    apt-get install -y -qq "$@" >/dev/null || die "apt-get install $* failed"
}

ensure_postgres() {
    if port_open 127.0.0.1 5432; then echo "==> PostgreSQL is up on 127.0.0.1:5432"; return; fi
    local fresh=0
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then apt_install postgresql; fresh=1; fi
    echo "==> starting PostgreSQL"
    local version
    for version in $(ls /etc/postgresql 2>/dev/null); do
        pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
    done
    wait_for_port PostgreSQL 127.0.0.1 5432 30
    if [ "$fresh" = 1 ]; then
        # A fresh Debian cluster asks for a password over TCP; give the tests' user the one in TEST_POSTGRES_URL.
        runuser -u postgres -- psql -q -c "ALTER USER postgres PASSWORD 'postgres'" \
            || die "could not set the postgres user's password on the fresh PostgreSQL"
    fi
}

ensure_mosquitto() {
    if port_open 127.0.0.1 1883; then echo "==> Mosquitto is up on 127.0.0.1:1883"; return; fi
    command -v mosquitto >/dev/null 2>&1 || apt_install mosquitto
    echo "==> starting Mosquitto"
    mosquitto -d -c /etc/mosquitto/mosquitto.conf || die "mosquitto failed to start"
    wait_for_port Mosquitto 127.0.0.1 1883 15
}

# MariaDB for the SQL source's tests (tests/tests/sql_source.rs): root with an empty password over TCP and a
# database `test`, as TEST_MARIADB_URL says. A fresh Debian install lets root in only over the unix socket; this
# adds the TCP login the tests use (on 127.0.0.1 only, which is where Debian's server listens).
ensure_mariadb() {
    if port_open 127.0.0.1 3306; then
        echo "==> MariaDB is up on 127.0.0.1:3306"
    else
        if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then apt_install mariadb-server; fi
        echo "==> starting MariaDB"
        if ! service mariadb start >/dev/null 2>&1; then
            mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
            (mysqld_safe --bind-address=127.0.0.1 >/dev/null 2>&1 &)
        fi
        wait_for_port MariaDB 127.0.0.1 3306 60
    fi
    command -v mariadb >/dev/null 2>&1 || apt_install mariadb-client
    if ! mariadb -h127.0.0.1 -P3306 -uroot -e "CREATE DATABASE IF NOT EXISTS test" >/dev/null 2>&1; then
        [ "$(id -u)" = 0 ] || die "MariaDB refuses root over TCP and this is not root; let root@127.0.0.1 in with an empty password"
        echo "==> letting root into MariaDB over TCP (empty password, 127.0.0.1 only)"
        mariadb -uroot -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
            GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
            ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket;
            CREATE DATABASE IF NOT EXISTS test;" \
            || die "could not give root a TCP login on MariaDB (through the unix socket as root)"
        mariadb -h127.0.0.1 -P3306 -uroot -e "SELECT 1" >/dev/null 2>&1 \
            || die "MariaDB still refuses root@127.0.0.1 with an empty password"
    fi
}

# A pinned PyPI package in its own virtualenv: reused when it holds that version, else created afresh. A failure
# stops the run, naming what needed it. Usage: ensure_pip_venv VENV PACKAGE VERSION PURPOSE
ensure_pip_venv() {
    local venv="$1" package="$2" version="$3" purpose="$4"
    if [ -x "$venv/bin/python" ] \
        && "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('$package') != '$version')" 2>/dev/null; then
        echo "==> $package $version is ready in $venv"
        return
    fi
    command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
    echo "==> creating $venv with $package==$version"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" 2>/dev/null; then
        apt_install python3-venv
        python3 -m venv "$venv" || die "python3 -m venv failed; $purpose needs a virtualenv for $package"
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$package==$version" \
        || die "pip install $package==$version failed; $purpose needs it (PyPI must be reachable)"
}

# pyzk 0.9 from PyPI in a virtualenv under target/, for the ZKTeco interop tests and the zk-read bench (a client we
# did not write, reading our device simulator). Exports PYZK_PYTHON.
ensure_pyzk() {
    local venv="${PYZK_VENV:-$PWD/target/pyzk-venv}"
    ensure_pip_venv "$venv" pyzk 0.9 "the ZKTeco interop tests"
    export PYZK_PYTHON="$venv/bin/python"
}

# Schemathesis (PyPI), pinned: the API conformance test (tests/tests/api_conformance.rs) runs it against the served
# admin API.
ensure_schemathesis() {
    local venv="${SCHEMATHESIS_VENV:-$PWD/target/schemathesis-venv}"
    ensure_pip_venv "$venv" schemathesis 4.32.5 "the API conformance test"
    export SCHEMATHESIS_BIN="$venv/bin/st"
}

# aiosmtpd 1.4.6, the SMTP server the alert tests send e-mail to (tests/smtp/sink.py).
ensure_smtp_sink() {
    local venv="${SMTP_SINK_VENV:-$PWD/target/smtp-venv}"
    ensure_pip_venv "$venv" aiosmtpd 1.4.6 "the alert tests"
    export SMTP_SINK_PYTHON="$venv/bin/python"
}

# Debian's Chromium and ChromeDriver for the real-browser dashboard test (tests/tests/dashboard_browser.rs drives
# /usr/bin/chromium through /usr/bin/chromedriver). Installed when either is missing; a failure stops the run.
ensure_chromium() {
    if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
        echo "==> Chromium and ChromeDriver are installed"
    else
        apt_install chromium chromium-driver
    fi
    [ -x /usr/bin/chromium ] || die "/usr/bin/chromium is still missing after apt-get install chromium"
    [ -x /usr/bin/chromedriver ] || die "/usr/bin/chromedriver is still missing after apt-get install chromium-driver"
    /usr/bin/chromedriver --version >/dev/null 2>&1 || die "/usr/bin/chromedriver does not run (chromedriver --version failed)"
}
