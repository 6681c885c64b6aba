"""The RESP port against real clients: redis-py, redis-cli and redis-benchmark.

Run by scripts/resp-clients, which installs the clients and sets KV_BIN to the directory
holding kv and kvnode. Starts a three-node cluster (kv cluster up, RESP on) and a lone node
with a client token on free loopback ports; every wait is a poll with a deadline.
"""

import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import redis

KV_BIN = os.environ["KV_BIN"]
KV = os.path.join(KV_BIN, "kv")
KVNODE = os.path.join(KV_BIN, "kvnode")


def free_port_range(count):
    """A run of `count` free loopback ports below the ephemeral range."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = 20000 + probe.getsockname()[1] % 20000
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", port))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free port range")


def poll(what, check, timeout=20.0, interval=0.05):
    """Calls check() until it returns None (done) or the deadline; raises with the last state."""
    deadline = time.monotonic() + timeout
    state = "never checked"
    while True:
        try:
            state = check()
            if state is None:
                return
        except Exception as error:  # the state is reported if the deadline passes
            state = f"error: {error!r}"
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}; last state: {state}")
        time.sleep(interval)


def http(url, method="GET", body=None):
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read(), dict(reply.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


class Cluster:
    """Three nodes started with kv cluster up, each with an HTTP and a RESP port."""

    def __init__(self):
        self.directory = tempfile.mkdtemp(prefix="converge-resp-")
        base = free_port_range(6)
        self.http_ports = [base, base + 1, base + 2]
        self.resp_ports = [base + 3, base + 4, base + 5]
        up = subprocess.run(
            [KV, "cluster", "up", "--data", self.directory, "--base-port", str(base),
             "--resp-base-port", str(base + 3), "--", "--anti-entropy-interval", "1"],
            capture_output=True, text=True, timeout=120)
        if up.returncode != 0:
            raise RuntimeError(f"kv cluster up failed: {up.stderr}")
        self.up_lines = up.stdout.splitlines()

    def url(self, index):
        return f"http://127.0.0.1:{self.http_ports[index]}"

    def client(self, index, **options):
        return redis.Redis(host="127.0.0.1", port=self.resp_ports[index], socket_timeout=10, **options)

    def down(self):
        subprocess.run([KV, "cluster", "down", "--data", self.directory], capture_output=True, timeout=60)
        shutil.rmtree(self.directory, ignore_errors=True)


class LoneNode:
    """One kvnode with a client token (for AUTH), serving TLS when asked."""

    def __init__(self, tls=False):
        self.directory = tempfile.mkdtemp(prefix="converge-resp-auth-")
        token = os.path.join(self.directory, "token")
        with open(token, "w") as f:
            f.write("s3cret\n")
        os.chmod(token, 0o600)
        arguments = ["--client-token-file", token]
        self.certificate = None
        if tls:
            self.certificate = os.path.join(self.directory, "cert.pem")
            key = os.path.join(self.directory, "key.pem")
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", key, "-out", self.certificate, "-days", "2", "-subj", "/CN=127.0.0.1",
                 "-addext", "subjectAltName=IP:127.0.0.1"],
                check=True, capture_output=True, timeout=60)
            os.chmod(key, 0o600)
            arguments += ["--tls-cert", self.certificate, "--tls-key", key]
        self.log = open(os.path.join(self.directory, "log"), "w+")  # closed in down()
        self.process = subprocess.Popen(
            [KVNODE, "--id", "T", "--port", "0", "--resp-port", "0", "--db", os.path.join(self.directory, "T.db")]
            + arguments,
            stdout=self.log, stderr=subprocess.STDOUT)
        self.port = None

        def listening():
            self.log.seek(0)
            found = re.search(r"serving RESP on 127\.0\.0\.1:(\d+)", self.log.read())
            if found:
                self.port = int(found.group(1))
                return None
            return "not serving RESP yet"

        poll("the lone node to serve RESP", listening)

    def down(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)


CLUSTER = None
LONE = None
TLS = None


def setUpModule():
    global CLUSTER, LONE, TLS
    CLUSTER = Cluster()
    LONE = LoneNode()
    TLS = LoneNode(tls=True)


def tearDownModule():
    for started in [CLUSTER, LONE, TLS]:
        if started:
            started.down()


class ClusterUpTests(unittest.TestCase):
    def test_up_prints_each_nodes_resp_port(self):
        for index, line in enumerate(CLUSTER.up_lines):
            self.assertIn(f"resp 127.0.0.1:{CLUSTER.resp_ports[index]}", line)


class StringCommandTests(unittest.TestCase):
    def setUp(self):
        self.r = CLUSTER.client(0)
        self.prefix = f"{self.id().split('.')[-1]}:"

    def k(self, name):
        return self.prefix + name

    def test_connection_commands(self):
        self.assertTrue(self.r.ping())
        self.assertEqual(self.r.echo("hi"), b"hi")
        self.assertTrue(self.r.select(0))
        with self.assertRaisesRegex(redis.ResponseError, "DB index is out of range"):
            self.r.select(1)
        self.r.client_setname("tester")
        self.assertEqual(self.r.client_getname(), "tester")
        self.assertIsInstance(self.r.client_id(), int)
        self.assertTrue(self.r.execute_command("CLIENT", "SETINFO", "LIB-NAME", "tests"))
        seconds, micros = self.r.time()
        self.assertLess(abs(seconds - time.time()), 5)
        self.assertGreater(self.r.command_count(), 30)
        self.assertEqual(self.r.execute_command("COMMAND", "INFO", "SET")["set"]["arity"], -3)
        self.assertIn("get", self.r.command())
        # On the connection itself: redis-py's parser for COMMAND expects COMMAND INFO's shape.
        connection = self.r.connection_pool.get_connection()
        try:
            connection.send_command("COMMAND", "DOCS", "GET")
            docs = connection.read_response()
        finally:
            self.r.connection_pool.release(connection)
        docs = docs if isinstance(docs, dict) else dict(zip(docs[0::2], docs[1::2]))  # RESP3 map or RESP2 pairs
        get = docs[b"get"]
        get = get if isinstance(get, dict) else dict(zip(get[0::2], get[1::2]))
        self.assertIn(b"summary", get)
        with self.assertRaisesRegex(redis.ResponseError, "unknown subcommand"):
            self.r.execute_command("CLIENT", "KILL", "x")

    def test_resp3_hello(self):
        r3 = CLUSTER.client(0, protocol=3)
        self.assertTrue(r3.set(self.k("a"), "1"))
        self.assertEqual(r3.get(self.k("a")), b"1")
        self.assertIsNone(r3.get(self.k("missing")))
        hello = r3.execute_command("HELLO", "3")
        self.assertEqual(hello[b"proto"] if b"proto" in hello else hello["proto"], 3)
        with self.assertRaisesRegex(redis.ResponseError, "NOPROTO"):
            self.r.execute_command("HELLO", "4")

    def test_get_set_and_conditions(self):
        a = self.k("a")
        self.assertTrue(self.r.set(a, "1"))
        self.assertEqual(self.r.get(a), b"1")
        self.assertIsNone(self.r.set(a, "2", nx=True))
        self.assertTrue(self.r.set(a, "2", xx=True))
        self.assertIsNone(self.r.set(self.k("absent"), "x", xx=True))
        self.assertEqual(self.r.set(a, "3", get=True), b"2")
        self.assertTrue(self.r.setnx(self.k("n"), "v"))
        self.assertFalse(self.r.setnx(self.k("n"), "w"))
        self.assertEqual(self.r.getset(a, "4"), b"3")
        self.assertEqual(self.r.getdel(a), b"4")
        self.assertIsNone(self.r.getdel(a))
        self.assertEqual(self.r.strlen(self.k("n")), 1)
        self.r.set(self.k("s"), "Hello World")
        self.assertEqual(self.r.getrange(self.k("s"), 0, 4), b"Hello")
        self.assertEqual(self.r.getrange(self.k("s"), -5, -1), b"World")
        self.assertEqual(self.r.type(self.k("s")), b"string")
        self.assertEqual(self.r.type(self.k("none")), b"none")
        with self.assertRaisesRegex(redis.ResponseError, "syntax error"):
            self.r.execute_command("SET", a, "v", "NX", "XX")
        with self.assertRaisesRegex(redis.ResponseError, "wrong number of arguments"):
            self.r.execute_command("GET")

    def test_multi_key_commands(self):
        keys = [self.k(str(i)) for i in range(5)]
        self.assertTrue(self.r.mset({key: f"v{i}" for i, key in enumerate(keys)}))
        self.assertEqual(self.r.mget(keys + [self.k("none")]), [b"v0", b"v1", b"v2", b"v3", b"v4", None])
        self.assertEqual(self.r.exists(*keys, self.k("none")), 5)
        self.assertEqual(self.r.delete(keys[0], keys[1], self.k("none")), 2)
        self.assertEqual(self.r.unlink(keys[2]), 1)
        self.assertEqual(sorted(self.r.keys(self.prefix + "*")), sorted(k.encode() for k in keys[3:]))
        with self.assertRaisesRegex(redis.ResponseError, "wrong number of arguments"):
            self.r.execute_command("MSET", self.k("odd"))

    def test_scan_walks_every_key_once(self):
        keys = {self.k(f"scan/{i}") for i in range(250)}
        self.r.mset({key: "v" for key in keys})
        found = list(self.r.scan_iter(match=self.prefix + "scan/*", count=37))
        self.assertEqual(len(found), len(keys))
        self.assertEqual({key.decode() for key in found}, keys)
        self.assertEqual(list(self.r.scan_iter(match=self.prefix + "scan/*", _type="hash")), [])
        self.assertGreaterEqual(self.r.dbsize(), 250)

    def test_pipelines_answer_in_order(self):
        pipe = self.r.pipeline(transaction=False)
        for i in range(200):
            pipe.set(self.k(f"p{i}"), str(i))
            pipe.get(self.k(f"p{i}"))
        replies = pipe.execute()
        self.assertEqual(replies[1::2], [str(i).encode() for i in range(200)])

    def test_expiry_commands(self):
        k = self.k("e")
        self.assertTrue(self.r.set(k, "v", ex=100))
        self.assertTrue(90 <= self.r.ttl(k) <= 100)  # a loaded machine takes its time
        self.assertTrue(self.r.set(k, "w", keepttl=True))
        self.assertGreater(self.r.pttl(k), 90_000)
        self.assertTrue(self.r.set(k, "x"))
        self.assertEqual(self.r.ttl(k), -1)
        self.assertEqual(self.r.ttl(self.k("absent")), -2)
        self.assertTrue(self.r.setex(k, 50, "v"))
        self.assertTrue(self.r.psetex(k, 50_000, "v"))
        self.assertTrue(self.r.expire(k, 200))
        self.assertFalse(self.r.expire(k, 300, nx=True))
        self.assertTrue(self.r.expire(k, 300, gt=True))
        self.assertTrue(self.r.pexpire(k, 400_000))
        at = int(time.time()) + 500
        self.assertTrue(self.r.expireat(k, at))
        self.assertEqual(self.r.expiretime(k), at)
        self.assertTrue(self.r.pexpireat(k, at * 1000))
        self.assertEqual(self.r.pexpiretime(k), at * 1000)
        self.assertTrue(self.r.persist(k))
        self.assertFalse(self.r.persist(k))
        self.assertEqual(self.r.getex(k, px=100_000), b"v")
        self.assertGreater(self.r.ttl(k), 90)
        self.assertEqual(self.r.getex(k, persist=True), b"v")
        self.assertEqual(self.r.ttl(k), -1)
        with self.assertRaisesRegex(redis.ResponseError, "invalid expire time"):
            self.r.set(k, "v", ex=0)
        with self.assertRaisesRegex(redis.ResponseError, "invalid expire time"):
            self.r.setex(k, -1, "v")
        self.assertTrue(self.r.expire(k, -1))  # a time in the past deletes
        self.assertIsNone(self.r.get(k))
        self.r.set(k, "v", px=200)
        self.r.set(self.k("at"), "v", exat=int(time.time()) + 100)
        self.assertGreater(self.r.ttl(self.k("at")), 90)
        self.r.set(self.k("pxat"), "v", pxat=int(time.time() * 1000) + 100_000)
        self.assertGreater(self.r.ttl(self.k("pxat")), 90)
        poll("a 200 ms key to expire", lambda: None if self.r.get(k) is None else "still there", timeout=10)
        self.assertEqual(self.r.exists(k), 0)
        status, _, _ = http(CLUSTER.url(0) + "/kv/" + k)
        self.assertEqual(status, 404)

    def test_refused_commands_say_why_in_one_line(self):
        for command, words in [
            (("INCR", "n"), "last-writer-wins"),
            (("APPEND", "n", "x"), "edits a value in place"),
            (("HSET", "h", "f", "v"), "stores strings only"),
            (("MULTI",), "transactions across commands are not offered"),
            (("SUBSCRIBE", "c"), "pub/sub is not offered"),
            (("FLUSHALL",), "one keyspace"),
            (("CONFIG", "GET", "save"), "kvnode flags"),
            (("NOSUCHTHING",), "unknown command"),
        ]:
            with self.assertRaises(redis.ResponseError) as caught:
                self.r.execute_command(*command)
            self.assertIn(words, str(caught.exception))
            self.assertNotIn("\n", str(caught.exception))

    def test_keys_are_refused_as_over_http(self):
        for key in [b"", b"a\x01b", b"\xff\xfe", b"k" * 1025]:
            with self.assertRaisesRegex(redis.ResponseError, "invalid key"):
                self.r.set(key, "v")
        self.assertTrue(self.r.set("k" * 1024, "v"))

    def test_values_cross_between_resp_and_http(self):
        binary = bytes(range(256))
        self.r.set(self.k("bin"), binary)
        status, body, headers = http(CLUSTER.url(0) + "/kv/" + self.k("bin"))
        self.assertEqual((status, body), (200, binary))
        http(CLUSTER.url(0) + "/kv/" + self.k("fromhttp") + "?ttl=60", "PUT", b"hello")
        self.assertEqual(self.r.get(self.k("fromhttp")), b"hello")
        self.assertTrue(50 <= self.r.ttl(self.k("fromhttp")) <= 60)
        self.r.set(self.k("withttl"), "v", ex=30)
        _, _, headers = http(CLUSTER.url(0) + "/kv/" + self.k("withttl"))
        expires = int({k.lower(): v for k, v in headers.items()}["kv-expires"])
        self.assertEqual(expires, self.r.pexpiretime(self.k("withttl")))

    def test_info_has_the_four_sections(self):
        info = self.r.info("everything")
        for field in ["redis_version", "connected_clients", "role", "connected_peers", "peer0", "peer1"]:
            self.assertIn(field, info)
        self.assertEqual(self.r.info("replication")["peers"], 2)


class ReplicationTests(unittest.TestCase):
    def test_resp_writes_reach_every_peer_and_wait_counts_them(self):
        a, b, c = CLUSTER.client(0), CLUSTER.client(1), CLUSTER.client(2)
        a.mset({f"repl:{i}": f"v{i}" for i in range(50)})
        a.set("repl:ttl", "v", ex=600)
        self.assertEqual(a.wait(2, 10_000), 2)
        for peer, index in [(b, 1), (c, 2)]:
            poll(f"node {index} to hold the writes",
                 lambda: None if peer.mget([f"repl:{i}" for i in range(50)]) == [f"v{i}".encode() for i in range(50)] else "not yet")
            self.assertGreater(peer.ttl("repl:ttl"), 500)
            status, body, _ = http(CLUSTER.url(index) + "/kv/repl:7")
            self.assertEqual((status, body), (200, b"v7"))
        b.delete("repl:0")
        poll("the delete to reach A", lambda: None if a.get("repl:0") is None else "still there")


class AuthTests(unittest.TestCase):
    def test_the_client_token_is_auths_password(self):
        r = redis.Redis(host="127.0.0.1", port=LONE.port, socket_timeout=10)
        with self.assertRaises(redis.AuthenticationError):
            r.get("k")
        with self.assertRaises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=LONE.port, password="wrong").ping()
        ok = redis.Redis(host="127.0.0.1", port=LONE.port, password="s3cret", socket_timeout=10)
        self.assertTrue(ok.set("k", "v"))
        ok3 = redis.Redis(host="127.0.0.1", port=LONE.port, password="s3cret", protocol=3, socket_timeout=10)
        self.assertEqual(ok3.get("k"), b"v")


class TLSTests(unittest.TestCase):
    def test_a_tls_node_serves_resp_over_tls_only(self):
        r = redis.Redis(host="127.0.0.1", port=TLS.port, password="s3cret", ssl=True, ssl_ca_certs=TLS.certificate,
                        socket_timeout=10)
        self.assertTrue(r.set("tls:k", "v"))
        self.assertEqual(r.get("tls:k"), b"v")
        cli = subprocess.run(
            ["redis-cli", "--tls", "--cacert", TLS.certificate, "-p", str(TLS.port), "--no-auth-warning", "-a", "s3cret",
             "GET", "tls:k"], capture_output=True, timeout=60)
        self.assertEqual(cli.stdout, b"v\n", cli.stderr)
        with self.assertRaises(redis.ConnectionError):
            redis.Redis(host="127.0.0.1", port=TLS.port, password="s3cret", socket_timeout=5).ping()


class RedisCliTests(unittest.TestCase):
    def cli(self, *arguments, stdin=None, port=None):
        return subprocess.run(
            ["redis-cli", "-p", str(port or CLUSTER.resp_ports[0]), *arguments],
            input=stdin, capture_output=True, timeout=120)

    def test_pipe_of_100000_sets(self):
        lines = b"".join(b"SET cli:pipe:%d value-%d\r\n" % (i, i) for i in range(100_000))
        result = self.cli("--pipe", stdin=lines)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(b"errors: 0, replies: 100000", result.stdout)
        self.assertEqual(self.cli("GET", "cli:pipe:99999").stdout, b"value-99999\n")
        self.assertEqual(self.cli("--scan", "--pattern", "cli:pipe:9999?").stdout.count(b"\n"), 10)

    def test_one_shot_commands_and_errors(self):
        self.assertEqual(self.cli("SET", "cli:a", "1").stdout, b"OK\n")
        self.assertEqual(self.cli("-3", "GET", "cli:a").stdout, b"1\n")
        refusal = self.cli("INCR", "cli:a").stdout.strip()
        self.assertTrue(refusal.startswith(b"ERR INCR is not offered"), refusal)
        self.assertNotIn(b"\n", refusal)
        self.assertIn(b"NOAUTH", self.cli("GET", "k", port=LONE.port).stdout)
        self.assertEqual(self.cli("--no-auth-warning", "-a", "s3cret", "SET", "cli:k", "v", port=LONE.port).stdout, b"OK\n")
        self.assertEqual(self.cli("--no-auth-warning", "-a", "s3cret", "GET", "cli:k", port=LONE.port).stdout, b"v\n")

    def test_an_interactive_session_through_a_pty(self):
        pid, fd = pty.fork()
        if pid == 0:
            # A dumb terminal: line editing without cursor queries a script would have to answer.
            os.execvpe("redis-cli", ["redis-cli", "-p", str(CLUSTER.resp_ports[0])], {**os.environ, "TERM": "dumb"})
        transcript = b""

        def read_until(pattern, timeout=15):
            nonlocal transcript
            deadline = time.monotonic() + timeout
            while not re.search(pattern, transcript):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {pattern!r} in {transcript!r}")
                ready, _, _ = select.select([fd], [], [], left)
                if ready:
                    try:
                        transcript += os.read(fd, 4096)
                    except OSError:
                        break

        try:
            prompt = rb"127\.0\.0\.1:%d> " % CLUSTER.resp_ports[0]
            read_until(prompt)
            for command, answer in [
                (b"SET tty:k hello", rb"OK"),
                (b"GET tty:k", rb'"hello"'),
                (b"EXPIRE tty:k 100", rb"\(integer\) 1"),
                (b"TTL tty:k", rb"\(integer\) (9[0-9]|100)"),
                (b"HSET h f v", rb"\(error\) ERR HSET is not offered"),
                (b"DEL tty:k", rb"\(integer\) 1"),
                (b"GET tty:k", rb"\(nil\)"),
            ]:
                transcript = b""
                os.write(fd, command + b"\r")
                read_until(answer)
                read_until(prompt)
            os.write(fd, b"QUIT\r")
            _, status = os.waitpid(pid, 0)
            self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        finally:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            os.close(fd)


class RedisBenchmarkTests(unittest.TestCase):
    def test_set_and_get_run_without_errors(self):
        result = subprocess.run(
            ["redis-benchmark", "-p", str(CLUSTER.resp_ports[0]), "-t", "set,get", "-n", "2000", "-c", "10", "-P", "4", "--csv"],
            capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        rates = {line.split(",")[0].strip('"'): float(line.split(",")[1].strip('"'))
                 for line in result.stdout.splitlines()[1:] if line}
        self.assertGreater(rates["SET"], 0)
        self.assertGreater(rates["GET"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
