import json, ssl, time, urllib.request, hmac, hashlib, struct, base64, subprocess, os, sys, re, threading
ctx = ssl._create_unverified_context()
M = "/tmp/h11m/medguard"
d = "/tmp/h11m/rpo-data"; tgt = "/tmp/h11m/rpo-target"
subprocess.run(["rm", "-rf", d, tgt])
subprocess.run([M, "backup", "keygen", "--data", d, "--identity-out", "/tmp/h11m/rpo-id.txt"], check=True, stdout=subprocess.DEVNULL)
env = dict(os.environ, MEDGUARD_ADMIN_PASSWORD="Guanli#Mima2026", MEDGUARD_SECURITY_PASSWORD="Anquan#Mima2026")
p = subprocess.Popen([M, "serve", "--data", d, "--listen", "127.0.0.1:18443", "--backup-to", tgt], env=env, stdout=subprocess.PIPE, stderr=open("/tmp/h11m/rpo-serve.log", "w"))
base = "https://127.0.0.1:18443"
def req(method, path, tok=None, body=None):
    r = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None)
    r.add_header("Content-Type", "application/json")
    if tok: r.add_header("Authorization", "Bearer " + tok)
    try:
        with urllib.request.urlopen(r, context=ctx, timeout=30) as resp: return resp.status, resp.read()
    except urllib.error.HTTPError as e: return e.code, e.read()
for i in range(300):
    try:
        if req("GET", "/readyz")[0] == 200: break
    except Exception: pass
    time.sleep(0.1)
def totp(secret, t):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    h = hmac.new(key, struct.pack(">Q", int(t) // 30), hashlib.sha1).digest()
    o = h[-1] & 15
    return "%06d" % ((struct.unpack(">I", h[o:o+4])[0] & 0x7fffffff) % 1000000)
st, b = req("POST", "/api/v1/auth/login", body={"username": "admin", "password": "Guanli#Mima2026"})
tok = json.loads(b)["token"]
st, b = req("POST", "/api/v1/auth/totp", tok)
sec = json.loads(b)["secret"]
st, b = req("POST", "/api/v1/auth/totp/confirm", tok, {"code": totp(sec, time.time())})
tok = json.loads(b)["token"]
samples = []; stop = False
def sampler():
    while not stop:
        st, b = req("GET", "/metrics")
        m = re.search(rb"^medguard_backup_rpo_seconds (\S+)$", b, re.M)
        if m: samples.append(float(m.group(1)))
        time.sleep(1)
th = threading.Thread(target=sampler); th.start()
start = time.time(); n = 0; errs = 0; dur = float(sys.argv[1]) if len(sys.argv) > 1 else 180
while time.time() - start < dur:
    due = start + n / 20.0
    if due > time.time(): time.sleep(due - time.time())
    st, b = req("POST", "/api/v1/departments", tok, {"code": "R%d" % n, "name": "科室%d" % n})
    if st != 201: errs += 1
    n += 1
stop = True; th.join()
p.terminate(); p.wait()
s = sorted(samples)
p95 = s[int(0.95 * (len(s) - 1))]
print(json.dumps({"writes": n, "errors": errs, "seconds": round(time.time() - start, 1), "rate": round(n / (time.time() - start), 1),
  "samples": len(s), "rpo_max": max(s), "rpo_p95": p95, "rpo_median": s[len(s)//2]}))
