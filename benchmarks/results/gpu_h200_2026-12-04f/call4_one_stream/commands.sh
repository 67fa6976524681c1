# GPU session 15, call 4: one stream vs Ultralytics model.track at this session's code; torch backend tests on CUDA
source .devdata/common.sh
mkdir -p /tmp/o4
timeout 120 python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench $g/pets576.yaml $B --batch 1 --streams 1 --max-frames 400 --ultralytics -o /tmp/o4/one_stream.json > /tmp/o4/log_one.txt 2>&1; echo one rc=$?
grep -iE "ultralytics|ratio|steady" /tmp/o4/log_one.txt | head -8
timeout 100 python3 -m pytest -q -rfs tests/test_torch_backend.py -p no:cacheprovider 2>&1 | grep -E "^(FAILED|SKIPPED|ERROR)|passed|failed" | cut -c1-200 | tee /tmp/o4/pytest_torch.txt
tar czf $OUT/call4.tgz -C /tmp/o4 .
