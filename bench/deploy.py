"""pyinfra deploy doing the same work as bench/playbook.yml (30 operations + the handler).

Run from the bench/ directory (paths of files/ and templates/ are relative to it):
    pyinfra -y INVENTORY.py deploy.py
pyinfra 3.x API. Guards stand in for Ansible's `creates=` (a File fact read before the command), and
the handler runs when the config copy or the app.ini template changed (_if=any_changed).
"""

from io import StringIO

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.facts.server import Hostname
from pyinfra.operations import files, server
from pyinfra.operations.util import any_changed

APP = {
    "app_name": "benchapp",
    "app_root": "/opt/bench",
    "app_port": 8080,
    "app_workers": 4,
    "ansible_managed_note": "managed by the knockplay benchmark",
    "app_upstreams": [
        {"name": "alpha", "addr": "10.0.0.1", "port": 9001},
        {"name": "beta", "addr": "10.0.0.2", "port": 9002},
        {"name": "gamma", "addr": "10.0.0.3", "port": 9003},
    ],
}
# Ansible renders templates with trim_blocks; do the same so the files are equal.
JINJA = {"trim_blocks": True}
TEMPLATE_VARS = dict(APP, inventory_hostname=host.name, ansible_hostname=host.get_fact(Hostname).split(".")[0])


def creates(path):
    """Like Ansible's `creates=`: run only when the path does not exist yet."""
    return lambda: host.get_fact(File, path=path) is None


files.directory(name="app root", path="/opt/bench", mode=755)
files.directory(name="conf dir", path="/opt/bench/conf", mode=750)
files.directory(name="data dir", path="/opt/bench/data", mode=755)
files.directory(name="logs dir owned by deploy", path="/opt/bench/logs", user="deploy", group="deploy", mode=775)
files.directory(name="bin dir", path="/opt/bench/bin", mode=755)
files.directory(name="nested cache dir", path="/opt/bench/cache/objects/tmp", mode=700)
files.put(name="motd from content", src=StringIO("Managed by the knockplay benchmark\n"),
          dest="/opt/bench/conf/motd", mode=644)
files.put(name="secrets env from content", src=StringIO("API_TOKEN=not-a-real-token\nDB_PASSWORD=bench\n"),
          dest="/opt/bench/conf/secrets.env", mode=600)
files.put(name="version file", src=StringIO("1.0.0\n"), dest="/opt/bench/VERSION", mode=644)
main_config = files.put(name="main config", src="files/app.conf", dest="/opt/bench/conf/app.conf", mode=644)
files.put(name="launcher script", src="files/run.sh", dest="/opt/bench/bin/run.sh", mode=755)
files.put(name="logrotate config", src="files/logrotate.conf", dest="/opt/bench/conf/logrotate.conf", mode=644)
files.put(name="data set", src="files/data.csv", dest="/opt/bench/data/data.csv", mode=644)
app_ini = files.template(name="app.ini from template", src="templates/app.ini.j2",
                         dest="/opt/bench/conf/app.ini", mode=644, jinja_env_kwargs=JINJA, **TEMPLATE_VARS)
files.template(name="upstreams from template", src="templates/hosts.txt.j2",
               dest="/opt/bench/conf/upstreams.txt", mode=644, jinja_env_kwargs=JINJA, **TEMPLATE_VARS)
files.template(name="service env from template", src="templates/service.env.j2",
               dest="/opt/bench/conf/service.env", mode=640, jinja_env_kwargs=JINJA, **TEMPLATE_VARS)
files.line(name="settings max_connections", path="/opt/bench/conf/settings.conf",
           line="^max_connections=.*$", replace="max_connections=100")
files.line(name="settings timeout", path="/opt/bench/conf/settings.conf", line="^timeout=.*$", replace="timeout=30")
files.line(name="settings log level", path="/opt/bench/conf/settings.conf",
           line="^log_level=.*$", replace="log_level=info")
files.line(name="no debug setting", path="/opt/bench/conf/settings.conf", line="^debug=.*$", present=False)
files.block(name="limits block", path="/opt/bench/conf/limits.conf", content="nofile 65536\nnproc 4096",
            marker="# {mark} ANSIBLE MANAGED BLOCK")
files.block(name="settings extra block", path="/opt/bench/conf/settings.conf",
            content="[extra]\ncache_dir=/opt/bench/cache", marker="# {mark} ANSIBLE MANAGED BLOCK")
server.shell(name="initialize data", commands="touch /opt/bench/data/initialized",
             _if=creates("/opt/bench/data/initialized"))
server.shell(name="seed data", commands="echo seeded > /opt/bench/data/seed", _if=creates("/opt/bench/data/seed"))
server.shell(name="index data", commands="wc -l < /opt/bench/data/data.csv > /opt/bench/data/index",
             _if=creates("/opt/bench/data/index"))
files.link(name="current symlink", path="/opt/bench/current", target="/opt/bench/bin")
files.file(name="secrets stay private", path="/opt/bench/conf/secrets.env", user="root", group="root", mode=600)
files.directory(name="no stale tmp dir", path="/opt/bench/tmp", present=False)
files.file(name="access log owned by deploy", path="/opt/bench/logs/access.log", user="deploy", group="deploy",
           mode=640)
server.shell(name="install marker", commands="cp /opt/bench/VERSION /opt/bench/data/installed-version",
             _if=creates("/opt/bench/data/installed-version"))
# handler
server.shell(name="restart benchapp", commands="date +%s >> /opt/bench/logs/restarts.log",
             _if=any_changed(main_config, app_ini))
