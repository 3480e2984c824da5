"""Rewrite deploy/kubernetes/configmap-rules.yaml from cxstream/domain/default_rules.yaml.

    .venv/bin/python deploy/sync_rules.py

tests/test_deploy_kubernetes.py fails when the two differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "cxstream" / "domain" / "default_rules.yaml"
TARGET = ROOT / "deploy" / "kubernetes" / "configmap-rules.yaml"

HEADER = """\
# The rules file the workers load (CXSTREAM_RULES=/etc/cxstream/rules.yaml): a copy
# of cxstream/domain/default_rules.yaml made by deploy/sync_rules.py (a test keeps
# them equal). To change thresholds for one deployment, patch this ConfigMap in an overlay.
apiVersion: v1
kind: ConfigMap
metadata:
  name: cxstream-rules
  labels:
    app.kubernetes.io/name: cxstream
    app.kubernetes.io/part-of: cxstream
data:
  rules.yaml: |
"""


def render() -> str:
    lines = [("    " + line) if line.strip() else "" for line in SOURCE.read_text().splitlines()]
    return HEADER + "\n".join(lines) + "\n"


def main() -> int:
    TARGET.write_text(render())
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
