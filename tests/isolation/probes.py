"""The actions of the process sandbox tests: a victim that leaves a secret in its /tmp, and a probe (Python and
Node.js) that tries what a hostile tenant would. Each probe answers "allowed: <what>" or "denied: <why>"; the
test decides which answer is right."""

VICTIM = """
import os
def main(args):
    with open("/tmp/alice-secret", "w") as f:
        f.write("alice's secret")
    return {"uid": os.getuid()}
"""

PY_PROBE = r'''
import base64, ctypes, json, os, signal, socket, urllib.request

def attempt(fn):
    try:
        return "allowed: " + str(fn())
    except Exception as exc:
        return f"denied: {type(exc).__name__}: {exc}"

def read(path):
    with open(path, "rb") as f:
        return len(f.read())

def write(path):
    with open(path, "wb") as f:
        f.write(b"x" * 16)
    return path

def fill_tmp(mb):
    written = 0
    with open("/tmp/fill", "wb") as f:
        for _ in range(mb):
            f.write(b"\0" * (1 << 20))
            f.flush()
            written += 1
    os.remove("/tmp/fill")
    return written

def move_own_socket():
    own = os.environ["WHISK_PROXY_SOCKET"]
    os.rename(own, own + ".moved")         # were it allowed, a link put in its place would redirect the platform
    os.rename(own + ".moved", own)
    return own

def syscall(name):
    nr = {"x86_64": {"add_key": 248, "io_uring_setup": 425},
          "aarch64": {"add_key": 217, "io_uring_setup": 425}}[os.uname().machine][name]
    libc = ctypes.CDLL(None, use_errno=True)
    if name == "add_key":                  # a key in the uid's keyring (-4: KEY_SPEC_USER_KEYRING) would outlive us
        done = libc.syscall(nr, b"user", b"whisk-probe", b"x", 1, -4)
    else:
        done = libc.syscall(nr, 4, ctypes.create_string_buffer(120))
    if done < 0:
        raise PermissionError(os.strerror(ctypes.get_errno()))
    return done

def tcp_connect(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        return port

def host_unix_sockets(path):
    listed = open("/proc/net/unix").read()
    if path in listed:
        return "listed"
    raise LookupError("not listed")

def unix_connect(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
    return path

def api(host, key, path="/api/v1/namespaces/_/actions"):
    request = urllib.request.Request(host + path,
                                     headers={"Authorization": "Basic " + base64.b64encode(key.encode()).decode()})
    with urllib.request.urlopen(request, timeout=10) as r:
        return r.status

def processes():
    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())

def cmdlines():
    return [open(f"/proc/{p}/cmdline", "rb").read().replace(b"\0", b" ").decode() for p in processes()]

def status():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
    return {k: fields[k].strip() for k in ("NoNewPrivs", "CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh")}

def unshare(flags):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) != 0:
        raise PermissionError(os.strerror(ctypes.get_errno()))
    return "unshared"

def run(*argv):
    import subprocess
    done = subprocess.run(argv, capture_output=True)
    if done.returncode != 0:
        raise PermissionError(done.stderr.decode().strip())
    return done.stdout.decode().strip()

def main(a):
    pid, victim = a["platform_pid"], a["victim_socket"]
    return {
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
        "status": status(), "processes": processes(), "cmdlines": cmdlines(),
        "read_store": attempt(lambda: read(a["store"])),
        "list_data_dir": attempt(lambda: os.listdir(a["data_dir"])),
        "signal_platform": attempt(lambda: os.kill(pid, 0)),
        "kill_platform": attempt(lambda: os.kill(pid, signal.SIGKILL)),
        "platform_environ": attempt(lambda: read(f"/proc/{pid}/environ")),
        "platform_root": attempt(lambda: os.listdir(f"/proc/{pid}/root/")),
        "victim_socket": attempt(lambda: unix_connect(victim)),
        "victim_socket_via_proc": attempt(lambda: unix_connect(a["victim_socket_via_proc"])),
        "victim_folder": attempt(lambda: os.listdir(os.path.dirname(victim))),
        "victim_tmp_via_proc": attempt(lambda: read(a["victim_secret_via_proc"])),
        "victim_tmp": attempt(lambda: read("/tmp/alice-secret")),
        "host_tmp": attempt(lambda: os.listdir(os.path.dirname(os.path.dirname(os.path.dirname(victim))))),
        "setuid_root": attempt(lambda: os.setuid(0)),
        "unshare": attempt(lambda: unshare(0x00020000)),                  # CLONE_NEWNS: needs CAP_SYS_ADMIN
        "user_namespace": attempt(lambda: unshare(0x10000000)),           # CLONE_NEWUSER: refused by seccomp
        "user_namespace_tool": attempt(lambda: run("unshare", "--user", "--map-root-user", "id", "-u")),
        "threads_and_children": attempt(lambda: run("sh", "-c", "echo ok")),
        "write_etc": attempt(lambda: write("/etc/probe")),
        "write_usr": attempt(lambda: write("/usr/probe")),
        "write_root": attempt(lambda: write("/probe")),
        "write_tmp": attempt(lambda: write("/tmp/probe")),
        "write_socket_folder": attempt(lambda: write(os.path.dirname(os.environ["WHISK_PROXY_SOCKET"]) + "/probe")),
        "move_own_socket": attempt(move_own_socket),
        "keyring": attempt(lambda: syscall("add_key")),
        "io_uring": attempt(lambda: syscall("io_uring_setup")),
        "fill_tmp": attempt(lambda: fill_tmp(a["tmp_mb"] + 4)),
        "api_host": attempt(lambda: api(os.environ["__OW_API_HOST"], a["key"])),
        "platform_port": attempt(lambda: tcp_connect(a["platform_port"])),
        "every_tenants_metrics": attempt(lambda: api(os.environ["__OW_API_HOST"], a["key"], "/metrics")),
        "every_tenants_activations": attempt(lambda: api(os.environ["__OW_API_HOST"], a["key"], "/activation")),
        "every_tenants_activation_count": attempt(lambda: api(os.environ["__OW_API_HOST"], a["key"],
                                                              "/activation/count")),
        "playground_key": attempt(lambda: api(os.environ["__OW_API_HOST"], a["key"], "/playground/config.json")),
        "host_unix_sockets": attempt(lambda: host_unix_sockets(a["victim_socket"])),
        # What other sandboxes' users hold keys (key-users), the host's timers (timer_list): hidden, as docker hides
        # them; how many containers were started before this one: not in its folder's name.
        "proc_masked": {path: attempt(lambda path=path: read(path) if os.path.isfile(path) else os.listdir(path))
                        for path in ("/proc/key-users", "/proc/keys", "/proc/timer_list", "/proc/acpi")
                        if os.path.exists(path)},
        "own_folder": os.path.basename(os.path.dirname(os.environ["WHISK_PROXY_SOCKET"])),
    }
'''

JS_PROBE = r'''
const fs = require('fs'), net = require('net'), http = require('http'), {execFileSync} = require('child_process');

function attempt(fn) {
  try { return 'allowed: ' + String(fn()); } catch (e) { return 'denied: ' + e.code + ': ' + e.message; }
}
async function attemptAsync(fn) {
  try { return 'allowed: ' + String(await fn()); } catch (e) { return 'denied: ' + e.code + ': ' + e.message; }
}
function unixConnect(path) {
  return new Promise((resolve, reject) => {
    const s = net.connect(path, () => { s.destroy(); resolve(path); });
    s.on('error', reject);
  });
}
function tcpConnect(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect({host: '127.0.0.1', port}, () => { s.destroy(); resolve(port); });
    s.on('error', reject);
  });
}
function api(host, key) {
  return new Promise((resolve, reject) => {
    const req = http.get(host + '/api/v1/namespaces/_/actions',
      {headers: {Authorization: 'Basic ' + Buffer.from(key).toString('base64')}}, (res) => {
        res.resume(); res.on('end', () => resolve(res.statusCode));
      });
    req.on('error', reject);
  });
}
function fillTmp(mb) {
  const fd = fs.openSync('/tmp/fill', 'w');
  let written = 0;
  try {
    for (let i = 0; i < mb; i++) { fs.writeSync(fd, Buffer.alloc(1 << 20)); written++; }
  } finally { fs.closeSync(fd); fs.unlinkSync('/tmp/fill'); }
  return written;
}
function status() {
  const out = {};
  for (const line of fs.readFileSync('/proc/self/status', 'utf8').split('\n')) {
    const [k, v] = line.split(':');
    if (['NoNewPrivs', 'CapEff', 'CapBnd'].includes(k)) out[k] = v.trim();
  }
  return out;
}
async function main(a) {
  const pid = a.platform_pid, victim = a.victim_socket;
  return {
    uid: process.getuid(), euid: process.geteuid(), status: status(),
    processes: fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number),
    read_store: attempt(() => fs.readFileSync(a.store).length),
    list_data_dir: attempt(() => fs.readdirSync(a.data_dir)),
    signal_platform: attempt(() => process.kill(pid, 0)),
    kill_platform: attempt(() => process.kill(pid, 'SIGKILL')),
    platform_environ: attempt(() => fs.readFileSync(`/proc/${pid}/environ`).length),
    victim_socket: await attemptAsync(() => unixConnect(victim)),
    victim_socket_via_proc: await attemptAsync(() => unixConnect(a.victim_socket_via_proc)),
    victim_tmp_via_proc: attempt(() => fs.readFileSync(a.victim_secret_via_proc).length),
    victim_tmp: attempt(() => fs.readFileSync('/tmp/alice-secret').length),
    setuid_root: attempt(() => process.setuid(0)),
    user_namespace: attempt(() => execFileSync('unshare', ['--user', '--map-root-user', 'id', '-u'], {stdio: 'pipe'})),
    children: attempt(() => String(execFileSync('sh', ['-c', 'echo ok'])).trim()),
    write_etc: attempt(() => fs.writeFileSync('/etc/probe', 'x')),
    write_root: attempt(() => fs.writeFileSync('/probe', 'x')),
    write_tmp: attempt(() => { fs.writeFileSync('/tmp/probe', 'x'); return '/tmp/probe'; }),
    fill_tmp: attempt(() => fillTmp(a.tmp_mb + 4)),
    api_host: await attemptAsync(() => api(process.env.__OW_API_HOST, a.key)),
    platform_port: await attemptAsync(() => tcpConnect(a.platform_port)),
  };
}
'''
