"""Hole 4 (issue 10): an upstream name with several addresses is served as long
as one of them answers. `multi.authgate.test` maps to two loopback addresses in
a private /etc/hosts (harness_dns); ag-echo listens only on the address that
getaddrinfo returns SECOND, the first refuses. The HTTP/1.1 client takes the
addresses from the background resolver and tries each before answering 502
(before, only the first was tried: 502 upstream_connect)."""

import socket
import unittest

import harness as H
import harness_dns as D

NAME = "multi.authgate.test"
DEAD = "dead.authgate.test"  # both addresses refuse
SINGLE = "single.authgate.test"  # only the serving address: the namespace control


class Hole4DnsEveryAddress(H.GatewayCase):
    @classmethod
    def unavailable(cls):
        why = D.unavailable()
        return "no private /etc/hosts: %s" % why if why else None

    @classmethod
    def start_upstream(cls):
        cls.hosts = D.HostsFile({NAME: ["127.0.0.1", "127.0.0.3"],
                                 DEAD: ["127.0.0.1", "127.0.0.3"],
                                 SINGLE: ["127.0.0.3"]})
        order = cls.hosts.order(NAME)
        if sorted(order) != ["127.0.0.1", "127.0.0.3"]:
            raise RuntimeError("getaddrinfo in the namespace gave %r for %s" % (order, NAME))
        cls.first, cls.second = order
        cls.port = D.free_port_on(cls.first, cls.second)
        echo = D.EchoAt(cls.second, cls.port)
        # Chosen while the echo listens, so it cannot be the echo's port.
        cls.dead_port = D.free_port_on(cls.first, cls.second)
        return echo

    @classmethod
    def make_config(cls, echo):
        return {
            "auth": {"verifier_key_file": H.keys("main").public, "issuer": H.ISSUER},
            "upstreams": {
                "multi": {"url": "http://%s:%d" % (NAME, cls.port),
                          "connect_timeout_ms": 1000},
                "dead": {"url": "http://%s:%d" % (DEAD, cls.dead_port),
                         "connect_timeout_ms": 1000},
                "single": {"url": "http://%s:%d" % (SINGLE, cls.port)},
            },
            "routes": [
                {"path": "/multi/**", "policy": "public", "upstream": "multi"},
                {"path": "/dead/**", "policy": "public", "upstream": "dead"},
                {"path": "/single/**", "policy": "public", "upstream": "single"},
            ],
        }

    @classmethod
    def start_gateway(cls, config):
        return D.NsGateway(config, cls.hosts, name="hole4")

    def refuses(self, addr, port):
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect((addr, port))
            return False
        except ConnectionRefusedError:
            return True
        finally:
            s.close()

    def test_hole4_first_address_refuses_second_serves(self):
        # The setup this test is about: first address refuses, second answers.
        self.assertTrue(self.refuses(self.first, self.port),
                        "something listens on %s:%d" % (self.first, self.port))
        self.assertFalse(self.refuses(self.second, self.port))
        # Fresh client connections; each may need a new upstream connection.
        for i in range(3):
            before = self.echo.count()
            r = self.gw.request("GET", "/multi/x%d" % i)
            self.assertEqual(r.status, 200, "request %d via %s (first %s refuses, second %s "
                             "serves): %r\n%s" % (i, NAME, self.first, self.second, r,
                                                  H.tail(self.gw.err, 1500)))
            recs = self.echo.wait_new(before, 1)
            self.assertEqual(len(recs), 1, recs)
            self.assertEqual(recs[0]["path"], "/multi/x%d" % i)
            # The upstream is addressed by its name, not by the address tried.
            self.assertEqual(recs[0]["headers"].get("host"), "%s:%d" % (NAME, self.port))

    def test_hole4_control_name_from_private_hosts_reaches_echo(self):
        # Passes before the fix too: it shows the daemon sees the private
        # /etc/hosts, so a failure above is about the address choice.
        before = self.echo.count()
        r = self.gw.request("GET", "/single/x")
        self.assertEqual(r.status, 200, "%r\n%s" % (r, H.tail(self.gw.err, 1500)))
        recs = self.echo.wait_new(before, 1)
        self.assertEqual(len(recs), 1, recs)
        self.assertEqual(recs[0]["headers"].get("host"), "%s:%d" % (SINGLE, self.port))

    def test_hole4_every_address_refuses_502(self):
        r = self.gw.request("GET", "/dead/x")
        self.assertEqual(r.status, 502, r)
        H.check_error_response(self, r, 502)
        self.assertEqual(r.json()["reason"], "upstream_connect")


if __name__ == "__main__":
    unittest.main()
