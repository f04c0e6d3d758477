"""Run the independent Python implementation of the ER1 format against
the test vectors of docs/records.md (tests/vectors/records/er1.txt).

The C unit test checks the same vectors with router/record.c; this one
shows that the specification alone is enough to reproduce them.
"""

import os
import sys

from harness import ROOT, run


def test_vectors_agree_with_second_implementation():
    script = os.path.join(ROOT, "tests", "vectors", "records", "verify_vectors.py")
    vectors = os.path.join(ROOT, "tests", "vectors", "records", "er1.txt")
    result = run([sys.executable, script, vectors])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok ER1 vectors checked independently" in result.stdout
