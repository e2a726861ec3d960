"""A reader of the repository alone can follow every reference (issue 13,
finding 3): no doc, comment or test names a file outside the repository;
every Markdown file name mentioned anywhere is a file of the repository (a
path from the repository root or from the mentioning file's directory, or the
name of one of its Markdown files); every
relative link in the Markdown docs points at an existing file and, when it
has one, at an existing heading; and the systemd unit's Documentation= path
is one that `make install-docs` installs."""

import os
import re
import subprocess
import unittest

import harness as H

# Spelled in pieces so that this file does not match itself.
FORBIDDEN = [
    "../" + "shared",
    "shared" + "/",
    "propelauth-" + "semantics",
    "propelauth-" + "libraries",
    "measurements" + ".md",
    "peers" + ".md",
    "style" + ".md",
    "seeds" + "/",
]
SKIP_DIRS = {".git", "build", "node_modules", "corpus", "__pycache__"}
TEXT_EXT = {".c", ".h", ".py", ".sh", ".md", ".js", ".json", ".yaml", ".yml", ".service",
            ".mk", ".txt", ".supp", ".conf", ".cfg", ".lua", ".toml", ""}
MD_MENTION = re.compile(r"(?<![\w./-])((?:\.{1,2}/)*(?:[\w.-]+/)*[\w-]+\.md)\b")
MD_LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def repo_files():
    out = []
    for root, dirs, files in os.walk(H.REPO):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            path = os.path.join(root, name)
            ext = os.path.splitext(name)[1]
            if ext not in TEXT_EXT and name not in ("Makefile", "Dockerfile"):
                continue
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except (UnicodeDecodeError, OSError):
                continue
            out.append((os.path.relpath(path, H.REPO), text))
    return out


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped,
    spaces to hyphens."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M)}


class RepoRefs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.files = repo_files()

    def test_walk_sees_the_sources(self):
        names = {n for n, _ in self.files}
        for must in ("README.md", "docs/security.md", "src/jwt.c", "Makefile",
                     "systemd/authgate.service", "tests/integration/harness.py"):
            self.assertIn(must, names)

    def test_no_file_outside_the_repository_is_named(self):
        bad = []
        for name, text in self.files:
            for n, line in enumerate(text.splitlines(), 1):
                for f in FORBIDDEN:
                    if f in line:
                        bad.append("%s:%d: %r: %s" % (name, n, f, line.strip()[:120]))
        self.assertEqual(bad, [], "references to files outside the repository:\n" +
                         "\n".join(bad))

    def test_every_md_mention_is_a_repository_file(self):
        names = {os.path.basename(n) for n, _ in self.files if n.endswith(".md")}
        self.assertIn("semantics.md", names)
        bad = []
        for name, text in self.files:
            here = os.path.dirname(os.path.join(H.REPO, name))
            for n, line in enumerate(text.splitlines(), 1):
                for m in MD_MENTION.finditer(line):
                    ref = m.group(1)
                    cands = [os.path.normpath(os.path.join(here, ref)),
                             os.path.normpath(os.path.join(H.REPO, ref))]
                    if not any(os.path.isfile(c) for c in cands) and ref not in names:
                        bad.append("%s:%d: %s" % (name, n, ref))
        self.assertEqual(bad, [], "mentioned .md files that do not exist (write the path from "
                         "the repository root, e.g. docs/security.md):\n" + "\n".join(bad))

    def test_cited_catalog_cases_exist(self):
        # "docs/security.md case 89", "security.md A19, A20", "cases 22-23":
        # each number cited must be a row of the catalog (section 9).
        with open(os.path.join(H.REPO, "docs", "security.md"), encoding="utf-8") as f:
            rows = set(re.findall(r"^\| ([A-J]\d+) \|", f.read(), re.M))
        self.assertGreater(len(rows), 50, "the catalog table was not found")
        numbers = {int(r[1:]): r for r in rows}
        cite = re.compile(r"security\.md[ ,]+(?:(?:case|cases|group|groups)\s+)?"
                          r"((?:[A-J]?\d+(?:-[A-J]?\d+)?(?:,\s*|\s+and\s+)?)+)")
        bad, n = [], 0
        for name, text in self.files:
            for m in cite.finditer(text):
                for tok in re.findall(r"[A-J]?\d+", m.group(1)):
                    n += 1
                    num = int(tok.lstrip("ABCDEFGHIJ"))
                    if num not in numbers or (tok[0].isalpha() and numbers[num] != tok):
                        line = text.count("\n", 0, m.start()) + 1
                        bad.append("%s:%d: %s" % (name, line, tok))
        self.assertGreater(n, 10, "the citation pattern found almost nothing")
        self.assertEqual(bad, [], "cited cases that are not in docs/security.md section 9:\n" +
                         "\n".join(bad))

    def test_relative_links_in_the_docs_resolve(self):
        mds = [n for n, _ in self.files
               if n.endswith(".md") and (n.startswith("docs/") or "/" not in n or
                                         n.startswith("docker/") or n.startswith("bench/"))]
        self.assertIn("README.md", mds)
        checked, bad = 0, []
        for name in mds:
            path = os.path.join(H.REPO, name)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
            for m in MD_LINK.finditer(text):
                target = m.group(1)
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                    continue  # http:, https:, mailto:, file:
                checked += 1
                file_part, _, frag = target.partition("#")
                dest = (os.path.normpath(os.path.join(os.path.dirname(path), file_part))
                        if file_part else path)
                if not os.path.exists(dest):
                    bad.append("%s: (%s): no such file" % (name, target))
                elif frag and dest.endswith(".md") and frag not in anchors(dest):
                    bad.append("%s: (%s): no heading with that anchor" % (name, target))
        self.assertGreater(checked, 5, "the link pattern found almost nothing")
        self.assertEqual(bad, [], "\n".join(bad))

    def test_systemd_documentation_is_installed(self):
        unit = os.path.join(H.REPO, "systemd", "authgate.service")
        with open(unit) as f:
            docs = re.findall(r"^Documentation=(.*)$", f.read(), re.M)
        self.assertTrue(docs, "the unit names no Documentation=")
        dest = H.new_tmp("install-docs-")
        env = dict(os.environ)
        for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
            env.pop(k, None)
        r = subprocess.run(["make", "-C", H.REPO, "--no-print-directory", "install-docs",
                            "DESTDIR=" + dest], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout.decode(errors="replace"))
        n = 0
        for line in docs:
            for uri in line.split():
                if uri.startswith("file://"):
                    n += 1
                    p = uri[len("file://"):]
                    self.assertTrue(os.path.isfile(dest + p),
                                    "%s is not installed by make install-docs" % uri)
                else:
                    self.assertRegex(uri, r"^(https?|man|info):", "odd Documentation= %r" % uri)
        self.assertGreater(n, 0, "no file:// documentation to check")


if __name__ == "__main__":
    unittest.main()
