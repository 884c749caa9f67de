#!/usr/bin/env python3
"""The agent and the real cxpanel `modify.php`, side by side, on the same FreePBX data.

Not part of the test suite (it needs the cxpanel source and PHP, which CI does not have):

    apt-get install -y php-cli php-curl php-mysql
    # bring github:FreePBX/cxpanel beside the checkout (the runner finds .mirror/FreePBX+cxpanel)
    cargo build --release
    python3 scripts/cxpanel-side-by-side.py [N]          # N extensions, default 1000

What it does, once per tool, each into a fresh embedded endpoint of its own
(`isymphony-sync --serve-only`, durable store):
  1. builds a FreePBX database from tests/fixtures/freepbx_modern_{schema,data}.sql and
     cx_settings_kvstore.sql, grown to N extensions of the same shape (users, devices, sip,
     cxpanel_users, a User Manager user each, voicemail.conf mailboxes with e-mail), then copies
     it, so that each tool reads an identical database of its own (cxpanel writes to its tables);
  2. first sync: `run-modify.sh` (cxpanel, unmodified, on the FreePBX shim of
     ../shared/tools/cxpanel-modify) and `isymphony-sync --sync-now`;
  3. full verify (nothing changed): `run-modify.sh` again and `isymphony-sync --sync-now --full`.
The endpoint is restarted between the two steps, so that its request counts (logged at
SIGTERM) are per step. For each step it prints wall clock, the client's CPU (rusage of the
child), the endpoint's CPU (/proc/PID/stat), the requests the endpoint served, and at the end
the objects each endpoint holds. Environment: RUN_MODIFY (the runner), BIN (the agent binary,
default target/release/isymphony-sync), MYSQL (default `mysql -uroot -h127.0.0.1`), KEEP=1 keeps
the work directory and databases.
"""

import base64
import hashlib
import json
import os
import re
import resource
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures")
RUN_MODIFY = os.environ.get(
    "RUN_MODIFY",
    os.path.join(os.path.dirname(REPO), "shared", "tools", "cxpanel-modify", "run-modify.sh"),
)
BIN = os.environ.get("BIN", os.path.join(REPO, "target", "release", "isymphony-sync"))
MYSQL = shlex.split(os.environ.get("MYSQL", "mysql -uroot -h127.0.0.1"))
PASSWORD = "side-by-side-secret"
TICK = os.sysconf("SC_CLK_TCK")


def mysql(sql, db=None):
    args = MYSQL + ([db] if db else [])
    subprocess.run(args, input=sql.encode(), check=True)


def grow_sql(n):
    """Rows for extensions 2001.. so that the database holds n extensions in all (the fixture
    has 8), each shaped like the fixture's plain pjsip extension 1001."""
    out = []
    vm = []
    extra = max(0, n - 8)
    for i in range(extra):
        ext = str(2001 + i)
        name = f"Person {ext}"
        pw = hashlib.sha1(f"pw-{ext}".encode()).hexdigest()
        uid = 100 + i
        out.append(
            f"INSERT INTO users (extension, name, voicemail) VALUES ('{ext}', '{name}', 'default');\n"
            f"INSERT INTO devices (id, tech, dial, devicetype, user, description) VALUES "
            f"('{ext}', 'pjsip', 'PJSIP/{ext}', 'fixed', '{ext}', '{name}');\n"
            f"INSERT INTO sip (id, keyword, data) VALUES ('{ext}', 'dial', 'PJSIP/{ext}'), "
            f"('{ext}', 'sipdriver', 'chan_pjsip');\n"
            f"INSERT INTO cxpanel_users (user_id, display_name, peer, add_extension, full, add_user, "
            f"hashed_password, initial_password, auto_answer, parent_user_id, password_dirty) VALUES "
            f"('{ext}', '{name}', 'PJSIP/{ext}', 1, 1, 1, '{pw}', '', 0, '{ext}', 0);\n"
            f"INSERT INTO userman_users (id, username, password, displayname, email, default_extension) "
            f"VALUES ({uid}, 'u{ext}', '{pw}', '{name}', 'u{ext}@example.com', '{ext}');\n"
            f"INSERT INTO userman_users_settings (uid, module, `key`, val) VALUES ({uid}, 'cxpanel', 'add', '1');\n"
        )
        vm.append(f"{ext} => {ext},{name},u{ext}@example.com\n")
    return "".join(out), "".join(vm)


VOICEMAIL_HEAD = """[general]
serveremail=vm@example.com

[default]
1001 => 1234,Zoe O'Brien,zoe@example.com
1003 => 4321,Jose Muller,jose@example.com
1004 => 1,Beijing,,
1007 => 1,Carl,carl@example.com
"""


def kvstore_sql(port):
    rows = {
        "name": "default",
        "asterisk_host": "127.0.0.1",
        "client_host": "",
        "client_port": "58080",
        "client_use_ssl": "0",
        "api_host": "127.0.0.1",
        "api_port": str(port),
        "api_username": "manager",
        "api_password": PASSWORD,
        "api_use_ssl": "0",
        "sync_with_userman": "1",
        "clean_unknown_items": "0",
    }
    agents = {
        "settings_voicemail_agent": {
            "identifier": "local-vm",
            "directory": "/var/spool/asterisk/voicemail",
            "resource_host": "127.0.0.1",
            "resource_extension": "wav",
        },
        "settings_recording_agent": {
            "identifier": "local-rec",
            "directory": "/var/spool/asterisk/monitor",
            "resource_host": "127.0.0.1",
            "resource_extension": "wav",
            "file_name_mask": "\\${Tag(exten)}-\\${CDRUniqueId}",
        },
    }
    groups = {"settings_server": rows, **agents}
    vals = ", ".join(
        f"('{k}', '{v}', NULL, '{g}')" for g, kv in groups.items() for k, v in kv.items()
    )
    return f"INSERT INTO kvstore_FreePBX_modules_Cxpanel (`key`, val, type, id) VALUES {vals};\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Endpoint:
    """`isymphony-sync --serve-only` on its own port and data directory."""

    def __init__(self, work, name):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.config = os.path.join(self.dir, "serve.toml")
        with open(self.config, "w") as f:
            f.write(
                f'[server]\nenabled = true\nhttp_listen = "127.0.0.1:{self.port}"\n'
                f'data_dir = "{self.dir}/data"\nusername = "manager"\npassword = "{PASSWORD}"\n'
                f'agent_listen = "127.0.0.1:{free_port()}"\n'
            )
        self.proc = None
        self.log = None

    def url(self):
        return f"http://127.0.0.1:{self.port}/communication_manager/api/resource/"

    def start(self):
        self.log = os.path.join(self.dir, f"serve-{time.time_ns()}.log")
        self.proc = subprocess.Popen(
            [BIN, "--serve-only", "--config", self.config],
            stdout=open(self.log, "w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"the endpoint did not start: see {self.log}")

    def cpu(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def stop(self):
        """SIGTERM; returns the request counts it logged."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        text = open(self.log).read()
        m = re.findall(r"requests=(\d+) get=(\d+) post=(\d+) put=(\d+) delete=(\d+)", text)
        if not m:
            raise SystemExit(f"no request counts in {self.log}")
        return dict(zip(["total", "get", "post", "put", "delete"], map(int, m[-1])))

    def get(self, path):
        req = urllib.request.Request(self.url() + path)
        token = base64.b64encode(f"manager:{PASSWORD}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)


def timed(argv, log):
    """Runs argv; returns (exit status, wall seconds, child CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    rc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return rc, wall, cpu


def step(ep, argv, logname):
    ep.start()
    cpu0 = ep.cpu()
    with open(os.path.join(ep.dir, logname), "w") as log:
        rc, wall, cpu = timed(argv, log)
    ep_cpu = ep.cpu() - cpu0
    counts = ep.stop()
    return {"rc": rc, "wall": wall, "client_cpu": cpu, "endpoint_cpu": ep_cpu, "requests": counts}


def holdings(ep):
    """Objects per collection of the core servers on the endpoint."""
    ep.start()
    try:
        out = {}
        for cs in ep.get("server/coreServers"):
            for coll in ["asterisk/{}/extensions", "core/{}/users", "asterisk/{}/queues",
                         "asterisk/{}/conferenceRooms", "asterisk/{}/parkingLots"]:
                try:
                    name = coll.rsplit("/", 1)[1]
                    out[name] = out.get(name, 0) + len(ep.get(coll.format(cs["id"])))
                except Exception:  # a collection this endpoint does not have
                    pass
        return out
    finally:
        ep.stop()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    for path, what in [(BIN, "cargo build --release"), (RUN_MODIFY, "RUN_MODIFY=...")]:
        if not os.path.exists(path):
            raise SystemExit(f"missing {path} ({what})")
    work = tempfile.mkdtemp(prefix="cx-side-")
    tag = f"cxside_{os.getpid()}"
    dbs = {"cxpanel": f"{tag}_cx", "agent": f"{tag}_agent"}
    eps = {"cxpanel": Endpoint(work, "cxpanel"), "agent": Endpoint(work, "agent")}
    grow, vm_extra = grow_sql(n)
    etc = os.path.join(work, "etc")
    spool = os.path.join(work, "spool")
    os.makedirs(os.path.join(spool, "cxpanel"), exist_ok=True)
    os.makedirs(etc, exist_ok=True)
    vm_conf = os.path.join(etc, "voicemail.conf")
    with open(vm_conf, "w") as f:
        f.write(VOICEMAIL_HEAD + vm_extra)
    for who, db in dbs.items():
        mysql(f"DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db} CHARACTER SET utf8mb4;")
        for fx in ["freepbx_modern_schema.sql", "freepbx_modern_data.sql", "cx_settings_kvstore.sql"]:
            mysql(open(os.path.join(FIXTURES, fx)).read(), db)
        mysql(grow + kvstore_sql(eps["cxpanel"].port), db)
        mysql(
            f"UPDATE freepbx_settings SET value='{spool}' WHERE keyword='ASTSPOOLDIR';"
            f"INSERT INTO freepbx_settings (keyword, value) VALUES ('ASTETCDIR', '{etc}'), "
            "('AMPASTERISKUSER', 'root'), ('AMPASTERISKGROUP', 'root');",
            db,
        )
    conf = os.path.join(work, "freepbx.conf")
    with open(conf, "w") as f:
        f.write(
            "<?php\n$amp_conf['AMPDBUSER'] = 'root';\n$amp_conf['AMPDBPASS'] = '';\n"
            "$amp_conf['AMPDBHOST'] = '127.0.0.1';\n$amp_conf['AMPDBPORT'] = '3306';\n"
            f"$amp_conf['AMPDBNAME'] = '{dbs['cxpanel']}';\n$amp_conf['AMPDBENGINE'] = 'mysql';\n"
        )
    agent_conf = os.path.join(work, "agent.toml")
    with open(agent_conf, "w") as f:
        f.write(
            f'[freepbx]\ndatabase_url = "mysql://root@127.0.0.1:3306/{dbs["agent"]}"\n'
            f'voicemail_conf = "{vm_conf}"\nconfig_file = "{work}/no-freepbx.conf"\n'
            f'[isymphony]\nurl = "{eps["agent"].url()}"\nusername = "manager"\n'
            f'password = "{PASSWORD}"\n[sync]\nstate_dir = "{work}/agent-state"\n'
        )
    # The runner's own pre-check `php -m | grep -qi pdo_mysql` under pipefail fails at random
    # (grep -q closes the pipe, php gets SIGPIPE): run a copy without it, from the same folder.
    runner = os.path.join(work, "run-modify.sh")
    here = os.path.dirname(os.path.abspath(RUN_MODIFY))
    with open(RUN_MODIFY) as src, open(runner, "w") as dst:
        for line in src:
            if "php -m | grep" in line:
                continue
            if line.startswith("here="):
                line = f"here={shlex.quote(here)}\n"
            dst.write(line)
    cx = ["bash", runner, conf]
    agent = [BIN, "--config", agent_conf, "--sync-now"]
    results = {}
    for name, (ep, first, verify) in {
        "cxpanel": (eps["cxpanel"], cx, cx),
        "agent": (eps["agent"], agent, agent + ["--full"]),
    }.items():
        results[name] = {
            "first sync": step(ep, first, "first.log"),
            "full verify": step(ep, verify, "verify.log"),
        }
    held = {name: holdings(ep) for name, ep in eps.items()}
    load = os.getloadavg()[0]
    print(f"# side by side, {n} extensions, load {load:.2f}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("| step | tool | exit | wall s | client CPU s | endpoint CPU s | requests (GET/POST/PUT/DELETE) |")
    print("|---|---|---|---|---|---|---|")
    for s in ["first sync", "full verify"]:
        for name in ["cxpanel", "agent"]:
            r = results[name][s]
            q = r["requests"]
            print(
                f"| {s} | {name} | {r['rc']} | {r['wall']:.2f} | {r['client_cpu']:.2f} | "
                f"{r['endpoint_cpu']:.2f} | {q['total']} ({q['get']}/{q['post']}/{q['put']}/{q['delete']}) |"
            )
        ratio = results["cxpanel"][s]["wall"] / results["agent"][s]["wall"]
        print(f"| {s} | ratio | | {ratio:.1f}× | | | |")
    print(f"held: cxpanel {held['cxpanel']}, agent {held['agent']}")
    if os.environ.get("KEEP") == "1":
        print(f"kept: {work}, databases {dbs['cxpanel']} {dbs['agent']}")
    else:
        for db in dbs.values():
            mysql(f"DROP DATABASE IF EXISTS {db};")
        subprocess.run(["rm", "-rf", work])
    bad = [(n_, s) for n_, r in results.items() for s, v in r.items() if v["rc"] != 0]
    if bad:
        raise SystemExit(f"a run failed: {bad} (logs under {work} with KEEP=1)")


if __name__ == "__main__":
    main()
