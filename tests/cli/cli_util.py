"""cli_util.py - what the command-line tests share: running numatp, counting
failed checks, and the tiny model and text they run on."""
import os
import subprocess
import sys


class Cli:
    def __init__(self, name):
        self.numatp, self.source_root = sys.argv[1], sys.argv[2]
        self.name = name
        self.failures = 0

    def check(self, cond, what):
        if not cond:
            self.failures += 1
            print("FAIL:", what, file=sys.stderr)

    def run(self, args, stdin="", stdout=subprocess.PIPE, timeout=120, **kw):
        """(exit status, stdout, stderr) of numatp ARGS; stdin is text. A run past timeout
        seconds is killed and gives (None, "", "timed out")."""
        try:
            p = subprocess.run([self.numatp, *args], input=stdin.encode(), stdout=stdout,
                               stderr=subprocess.PIPE, timeout=timeout, **kw)
        except subprocess.TimeoutExpired:
            return None, "", "timed out after %d s" % timeout
        out = p.stdout.decode(errors="replace") if p.stdout is not None else ""
        return p.returncode, out, p.stderr.decode(errors="replace")

    def popen(self, args, **kw):
        return subprocess.Popen([self.numatp, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, **kw)

    def tiny_files(self, tmp, n_bytes):
        """A tiny F32 model (context 256) and the first n_bytes of the perplexity text."""
        model = os.path.join(tmp, "f32.gguf")
        rc, _, err = self.run(["gen", "-q", "--type", "f32", "-o", model])
        self.check(rc == 0, "gen the model (%s)" % err)
        text = os.path.join(tmp, "text.txt")
        with open(os.path.join(self.source_root, "tests", "data", "ppl-english.txt"), "rb") as f:
            head = f.read(n_bytes)
        with open(text, "wb") as f:
            f.write(head)
        return model, text

    def done(self):
        if self.failures:
            print("%s: %d check(s) failed" % (self.name, self.failures), file=sys.stderr)
            return 1
        print("%s: ok" % self.name)
        return 0
