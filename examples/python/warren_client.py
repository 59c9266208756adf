#!/usr/bin/env python3
"""A small client of warren's control API, using only Python's standard library.

It finds the running daemon as the warren CLI does: the repo is $WARREN_REPO,
else ~/.warren (or --repo DIR); the repo's api.json names the unix socket (or
the loopback TCP address, whose bearer token is in api.token). The API is
described in docs/api.md and docs/openapi.yaml.

    warren_client.py                      print this node's peer ID and its peers
    warren_client.py send PEER TYPE DATA  send a direct message
    warren_client.py recv TYPE [-n N]     print messages of TYPE as they arrive, one JSON line each
    warren_client.py tunnel ls            list the tunnels

A failed call prints the daemon's error and its code, e.g.
"warren_client: bad message type ... (invalid_argument)", and exits 1.
"""

import argparse
import base64
import http.client
import json
import os
import socket
import stat
import sys
import urllib.parse


class APIError(Exception):
    """An error answer of the daemon: HTTP status, stable code, message."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def __str__(self):
        return f"{self.message} ({self.code or self.status})"


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket."""

    def __init__(self, path, timeout=None):
        super().__init__("warren", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


def default_repo():
    return os.environ.get("WARREN_REPO") or os.path.join(os.path.expanduser("~"), ".warren")


def read_repo_file(repo, name, secret=False, limit=64 << 10):
    """Read a file of the repo with the checks the CLI makes: a regular file
    (never a symbolic link) owned by this user and not writable (for a secret:
    not accessible) by group or others, in a directory of the same kind."""
    st = os.stat(repo)
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise SystemExit(f"warren_client: repo {repo} is another user's or writable by others; refusing it")
    path = os.path.join(repo, name)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        mask = 0o077 if secret else 0o022
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & mask:
            raise SystemExit(f"warren_client: {path} is not a regular file of yours with safe permissions; refusing it")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise SystemExit(f"warren_client: {path} is larger than {limit} bytes")
    return data


class Client:
    """Calls one daemon's API."""

    def __init__(self, repo=None):
        repo = os.path.abspath(repo or default_repo())
        try:
            ep = json.loads(read_repo_file(repo, "api.json"))
        except FileNotFoundError:
            raise SystemExit(f"warren_client: no warren daemon is running on repo {repo} (no api.json; start one with `warren daemon`)")
        self.unix, self.tcp, self.token = ep.get("unix"), ep.get("tcp"), None
        if not self.unix:
            self.token = read_repo_file(repo, "api.token", secret=True).decode().strip()

    def _conn(self, timeout):
        if self.unix:
            return UnixHTTPConnection(self.unix, timeout=timeout)
        host, port = self.tcp.rsplit(":", 1)
        return http.client.HTTPConnection(host.strip("[]"), int(port), timeout=timeout)

    def _request(self, method, path, body=None, timeout=60):
        conn = self._conn(timeout)
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        if resp.status >= 300:
            raw = resp.read(64 << 10)
            conn.close()
            try:
                e = json.loads(raw)
                raise APIError(resp.status, e.get("code", ""), e.get("error", ""))
            except ValueError:
                raise APIError(resp.status, "", raw.decode(errors="replace").strip())
        return conn, resp

    def call(self, method, path, body=None):
        """One call: the decoded JSON answer."""
        conn, resp = self._request(method, path, body)
        try:
            return json.loads(resp.read())
        finally:
            conn.close()

    def stream(self, path, query):
        """An NDJSON stream: yields each record as it arrives."""
        conn, resp = self._request("GET", path + "?" + urllib.parse.urlencode(query), timeout=None)
        try:
            while True:
                line = resp.readline()
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)
        finally:
            conn.close()

    def id(self):
        return self.call("GET", "/v1/id")

    def peers(self):
        return self.call("GET", "/v1/peers")

    def send(self, peer, typ, payload):
        return self.call("POST", "/v1/messages/send",
                         {"peer": peer, "type": typ, "payload": base64.b64encode(payload).decode()})

    def subscribe(self, typ, n=0):
        """Yields the records of a subscription: the first {"subscribed": ...},
        then messages and {"dropped": N} records."""
        query = {"type": typ}
        if n:
            query["n"] = str(n)
        return self.stream("/v1/messages/subscribe", query)

    def tunnels(self):
        return self.call("GET", "/v1/tunnels")


def show_node(cl):
    info = cl.id()
    print(info["id"])
    for a in info["addrs"]:
        print("  " + a)
    peers = cl.peers()
    print(f"{len(peers)} peers")
    for p in peers:
        print(f"  {p['id']} {p['addr']} {p['direction']} {p['latency_ms']:.2f}ms")


def recv(cl, typ, n):
    got = 0
    for rec in cl.subscribe(typ, n):
        if "subscribed" in rec:
            print(f"subscribed to {rec['subscribed']['type']!r}", file=sys.stderr, flush=True)
        elif "dropped" in rec:
            print(f"{rec['dropped']} messages dropped so far", file=sys.stderr, flush=True)
        else:
            payload = base64.b64decode(rec["payload"])
            out = {"type": rec["type"], "from": rec["from"], "id": rec["id"], "time": rec["time"], "payload": rec["payload"]}
            try:
                out["text"] = payload.decode("utf-8")
            except UnicodeDecodeError:
                pass
            print(json.dumps(out), flush=True)
            got += 1
    print(f"received {got}", file=sys.stderr)


def tunnel_ls(cl):
    ts = cl.tunnels()
    print("ID  KIND     PROTOCOL  LISTEN  TARGET  STREAMS")
    for t in ts:
        print(f"{t['id']}  {t['kind']}  {t['protocol']}  {t['listen_address']}  {t['target_address']}  {t['active_streams']}")


def main(argv):
    ap = argparse.ArgumentParser(description="A client of warren's control API (standard library only).")
    ap.add_argument("--repo", help="repo directory (default $WARREN_REPO, else ~/.warren)")
    sub = ap.add_subparsers(dest="cmd")
    s = sub.add_parser("send", help="send a direct message")
    s.add_argument("peer")
    s.add_argument("type")
    s.add_argument("data")
    r = sub.add_parser("recv", help="print messages of a type as they arrive")
    r.add_argument("type")
    r.add_argument("-n", type=int, default=0, help="exit after this many messages (0: until interrupted)")
    t = sub.add_parser("tunnel", help="tunnels")
    t.add_argument("action", choices=["ls"])
    args = ap.parse_args(argv)

    cl = Client(args.repo)
    try:
        if args.cmd is None:
            show_node(cl)
        elif args.cmd == "send":
            res = cl.send(args.peer, args.type, args.data.encode())
            print(f"sent {res['sent']} message to {args.peer}")
        elif args.cmd == "recv":
            recv(cl, args.type, args.n)
        elif args.cmd == "tunnel":
            tunnel_ls(cl)
    except APIError as e:
        print(f"warren_client: {e}", file=sys.stderr)
        return 1
    except (OSError, http.client.HTTPException) as e:
        print(f"warren_client: reach the warren daemon: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
