#!/usr/bin/env bash
# Model formats on a GPU machine (run there from the repository root, with the wheel of
# a binary built by scripts/build-device-binary.sh in .devwheel/):
#   - a .pt2 compiled for CUDA (tests/fixtures/models/pt2/tiny_cuda.pt2) runs with --device cuda;
#   - a CPU .pt2 and an .onnx asked for CUDA are exit 2;
#   - the three bundled models in each format on the CPU over MNIST at 0:360:15, timed,
#     with the installed onnxruntime package's library, and compared with TorchScript.
# Results of the run on 2026-11-30: docs/gpu-check.md.
R=$PWD; python3 -m pip install -q --no-deps --no-index --no-compile .devwheel/*.whl 2>&1 | tail -2; cd /tmp
rotbench doctor | sed -n 1,3p
D="--data $R/datasets/mnist --quiet --no-report --no-cache"
rotbench sweep --model $R/tests/fixtures/models/pt2/tiny_cuda.pt2 --device cuda $D --angles 0,90 --limit 1000 --out /tmp/cu; echo "tiny_cuda.pt2 on cuda: exit $?"; grep '"backend"\|"device"' /tmp/cu/summary.json
rotbench sweep --model $R/models/mnist-cnn.pt2 --device cuda $D --angles 0 --out /tmp/x1; echo "cpu .pt2 on cuda: exit $?"
rotbench sweep --model $R/models/mnist-cnn.onnx --device cuda $D --angles 0 --out /tmp/x2; echo ".onnx on cuda: exit $?"
for f in pt pt2 onnx; do /usr/bin/time -f "$f %e s" rotbench sweep --model $R/models/mnist-cnn.$f --model $R/models/mnist-cnn-aug.$f --model $R/models/mnist-p4cnn.$f --device cpu $D --angles 0:360:15 --out /tmp/f-$f; echo "$f exit $?"; grep '"backend"' /tmp/f-$f/summary.json; done
python3 - <<'PY'
import csv
def rows(f): return {(r['model'],r['angle'],r['index']):r['pred'] for r in csv.DictReader(open(f'/tmp/f-{f}/predictions.csv'))}
pt=rows('pt')
for f in ['pt2','onnx']:
    o=rows(f); print(f, sum(pt[k]!=o[k] for k in pt), 'of', len(pt), 'differ from TorchScript on this CPU')
PY
