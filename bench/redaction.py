"""`python bench/redaction.py`: how often the redaction step changes ordinary code, and how
fast it reads. The corpus is every module of this Python's standard library (tests left out)
plus opensync-lite's own source; a line counts as a false positive when redaction changes it.
(That every real-shaped secret is masked is a test: tests/test_redact.py.)"""

import pathlib
import sys
import sysconfig
import time
from collections import Counter

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from opensync_lite.redact import Redactor  # noqa: E402


def corpus():
    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
    paths = [p for p in sorted(stdlib.rglob("*.py")) if not {"test", "tests", "idle_test", "site-packages"} & set(p.parts)]
    return paths + sorted((HERE.parent / "opensync_lite").rglob("*.py"))


def main():
    lines = changed = size = 0
    kinds, examples = Counter(), []
    started = time.perf_counter()
    for path in corpus():
        text = path.read_text(encoding="utf-8", errors="replace")
        redactor = Redactor()
        out = redactor.text(text)
        size += len(text.encode())
        before, after = text.split("\n"), out.split("\n")
        lines += len(before)
        for a, b in zip(before, after):
            if a != b:
                changed += 1
                examples.append(f"{path.name}: {a.strip()[:100]}")
        kinds.update(redactor.counts)
    seconds = time.perf_counter() - started
    print(f"corpus: {lines:,} lines, {size / 1e6:.1f} MB of Python ({len(corpus())} files)")
    print(f"false positives: {changed} lines changed = {100 * changed / lines:.3f} % of lines")
    print(f"by detector: {dict(kinds.most_common())}")
    print(f"speed: {lines / seconds:,.0f} lines/s, {size / 1e6 / seconds:.2f} MB/s ({seconds:.1f} s)")
    for example in examples[:40]:
        print("  ", example)


if __name__ == "__main__":
    main()
