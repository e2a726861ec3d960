"""docs/configuration.md's key tables and docs/operations.md's "What needs a
restart" list are held to the binary's key table (`authgate check
--dump-keys`, one row per key), so neither can drift from what the loader and
the reload code actually do (issue 13)."""

import os
import re
import subprocess
import unittest

import harness as H

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# configuration.md section number -> the scope of its first table's keys
SCOPES = {"2": "", "3": "auth.", "4": "upstreams.*.", "5": "identity.", "6": "limits.",
          "7": "paths.", "8": "log.", "9": "routes[].", "10": "forward_auth.", "13": "cors.",
          "14": "websocket."}


def read_doc(name):
    with open(os.path.join(ROOT, "docs", name), encoding="utf-8") as f:
        return f.read()


def dump_keys():
    out = subprocess.run([H.authgate_bin(), "check", "--dump-keys"], stdout=subprocess.PIPE,
                         check=True).stdout.decode()
    rows = {}
    for line in out.splitlines():
        name, typ, default, reload, doc = line.split("\t")
        rows[name] = (typ, default, reload)
    return rows


def split_row(line):
    """Cells of a markdown table row; '\\|' inside a cell is not a separator."""
    cells = re.split(r"(?<!\\) \| ", line.strip()[2:-2])
    return [c.strip() for c in cells]


def doc_tables():
    """{dotted key: (type, default, reload)} from the first table of each section."""
    rows = {}
    scope = None
    state = "none"
    for line in read_doc("configuration.md").splitlines():
        m = re.match(r"^## (\d+)\. ", line)
        if m:
            scope, state = SCOPES.get(m.group(1)), "before"
            continue
        if scope is None:
            continue
        if state == "before" and line.startswith("| Key |"):
            state = "in"
            continue
        if state == "in":
            if line.startswith("|---"):
                continue
            if not line.startswith("| `"):
                state = "done"
                continue
            cells = split_row(line)
            key = cells[0].strip("`")
            rows[scope + key] = tuple(cells[1:4])
    return rows


class ConfigDocsMatchTable(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        miss = H.missing_binaries()
        cls._skip = "not built: %s (run make)" % ", ".join(miss) if miss else None

    def setUp(self):
        if self._skip:
            self.skipTest(self._skip)
        self.table = dump_keys()

    def test_every_key_documented_once_with_its_row(self):
        docs = doc_tables()
        self.assertGreater(len(self.table), 50)
        self.assertEqual(sorted(set(self.table) - set(docs)), [], "keys missing from the docs")
        self.assertEqual(sorted(set(docs) - set(self.table)), [], "documented keys that do not exist")
        for name, row in sorted(self.table.items()):
            with self.subTest(key=name):
                self.assertEqual(docs[name], row,
                                 "configuration.md row for %s (type, default, reload)" % name)

    def test_restart_list_in_operations_md(self):
        ops = read_doc("operations.md")
        m = re.search(r"\*\*What needs a restart\*\*(.*?)A reload that changes one of them", ops,
                      re.S)
        self.assertIsNotNone(m, "operations.md lost its 'What needs a restart' paragraph")
        named = set(re.findall(r"`([a-z_.]+)`", m.group(1)))
        want = {n for n, (_, _, reload) in self.table.items()
                if reload in ("restart", "restart to raise")}
        self.assertEqual(sorted(want - named), [], "restart-only keys operations.md omits")
        self.assertEqual(sorted(named - want), [], "keys operations.md wrongly calls restart-only")


if __name__ == "__main__":
    unittest.main()
