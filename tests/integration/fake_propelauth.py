"""A fake PropelAuth token_verification_metadata endpoint for the integration
suite (issue 5): a real threaded HTTP(S) server on loopback whose answer each
test sets, and which records every request's headers.

    fake = FakePropelAuth()                 # plain http on 127.0.0.1
    fake.serve_key(pem_text)                # 200 {"verifier_key_pem": ...}
    fake.serve_status(401)                  # or 400, 404, 429, 500, ...
    fake.serve_hang()                       # accept, read, never answer
    fake.serve_endless()                    # 200 with a chunked body that never ends
    fake.serve_raw(200, b"garbage")         # any body (garbage JSON, huge, bad PEM)
    fake.requests()                         # [{"method","path","headers":[(k, v)]}]
    fake.stop()

Also runnable by hand: python3 fake_propelauth.py PUBLIC.pem [PORT]
"""

import http.server
import json
import socketserver
import ssl
import sys
import threading
import time

METADATA_PATH = "/api/v1/token_verification_metadata"


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep the test output clean
        pass

    def do_GET(self):
        fake = self.server.fake
        rec = {"method": "GET", "path": self.path, "headers": list(self.headers.items()),
               "time": time.time()}
        with fake.lock:
            fake._requests.append(rec)
            answer = dict(fake._answer)
            fake.cond.notify_all()
        kind = answer["kind"]
        if kind == "hang":
            # hold the connection open until the client gives up or the fake stops
            fake._stopping.wait(answer.get("seconds", 120))
            self.close_connection = True
            return
        if kind == "endless":
            # a 200 whose chunked body never ends: the client must cap it
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b" " * 16384
            sent = 0
            try:
                self.wfile.write(b"%x\r\n{\r\n" % 1)
                while not fake._stopping.is_set() and sent < (256 << 20):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent += len(chunk)
            except OSError:
                pass
            with fake.lock:
                fake.endless_sent = max(fake.endless_sent, sent)
                fake.endless_finished += 1
            self.close_connection = True
            return
        status = answer["status"]
        body = answer["body"]
        if kind == "key" and self.path != METADATA_PATH:
            status, body = 404, b'{"error":"not found"}'
        self.send_response(status)
        self.send_header("Content-Type", answer.get("ctype", "application/json"))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass  # the client stopped reading (size cap): that is the point
        self.close_connection = True

    def do_POST(self):
        self.do_GET()


class FakePropelAuth:
    def __init__(self, certfile=None, keyfile=None, port=0):
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self._requests = []
        self._answer = {"kind": "status", "status": 500, "body": b"{}"}
        self._stopping = threading.Event()
        self.endless_sent = 0
        self.endless_finished = 0
        self.httpd = _Server(("127.0.0.1", port), _Handler)
        self.httpd.fake = self
        self.tls = certfile is not None
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    # what to answer ----------------------------------------------------------

    def _set(self, **answer):
        with self.lock:
            self._answer = answer

    def serve_key(self, pem, extra=None):
        doc = {"verifier_key_pem": pem}
        doc.update(extra or {"other_field_ignored": True})
        self._set(kind="key", status=200, body=json.dumps(doc).encode())

    def serve_status(self, status, body=b'{"error":"nope"}'):
        self._set(kind="status", status=status, body=body)

    def serve_raw(self, status, body, ctype="application/json"):
        self._set(kind="raw", status=status, body=body, ctype=ctype)

    def serve_endless(self):
        self._set(kind="endless")

    def serve_hang(self, seconds=120):
        self._set(kind="hang", seconds=seconds)

    # what it saw --------------------------------------------------------------

    def requests(self):
        with self.lock:
            return list(self._requests)

    def count(self):
        with self.lock:
            return len(self._requests)

    def wait_count(self, n, timeout=10.0):
        """Wait until at least n requests arrived; returns the count."""
        deadline = time.time() + timeout
        with self.lock:
            while len(self._requests) < n:
                left = deadline - time.time()
                if left <= 0:
                    break
                self.cond.wait(left)
            return len(self._requests)

    def stop(self):
        self._stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def main(argv):
    if len(argv) < 2:
        sys.stderr.write("usage: fake_propelauth.py PUBLIC.pem [PORT]\n")
        return 2
    with open(argv[1]) as f:
        pem = f.read()
    fake = FakePropelAuth(port=int(argv[2]) if len(argv) > 2 else 0)
    fake.serve_key(pem)
    print("serving %s%s" % (fake.url, METADATA_PATH), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
