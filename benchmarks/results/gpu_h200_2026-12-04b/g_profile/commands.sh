# where the main process and the decode processes spend their time (wall, idle included) with 3 NVDEC processes
set -o pipefail
mkdir -p /tmp/site && tar xzf .devdata/nvsite.tgz -C /tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devdata/whlslim/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 MPLBACKEND=Agg PATH=/tmp/site/bin:$PATH
g=benchmarks/gpu
sed "s/pipeline: {decode_processes: true}/pipeline: {decode_processes: true, decode_threads: 3, workers: 8, frame_slots: 648}/" $g/pets576_nvdec_proc.yaml > $g/_y.yaml
B="--device cuda:0 --half --no-progress"
rm -rf /tmp/bo; mkdir -p /tmp/bo
export POCKIT_NVDEC_NV12=1
python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench $g/_y.yaml $B --batch 32 --streams 32 --max-frames 2400 -o /tmp/bo/y.json > /tmp/bo/log_y.txt 2>&1 &
M=$!
for i in $(seq 1 120); do n=$(pgrep -P $M | wc -l); [ "$n" -ge 11 ] && break; sleep 0.5; done
echo "children $n after $i"; sleep 4
timeout 30 py-spy record --idle --subprocesses -r 200 -d 8 -f raw -o $OUT/prof_y.txt --pid $M > /tmp/bo/pyspy.txt 2>&1; echo "pyspy rc=$?"; tail -3 /tmp/bo/pyspy.txt
wait $M; echo "bench rc=$?"
cp /tmp/bo/y.json $OUT/; gzip -f $OUT/prof_y.txt
python3 benchmarks/gpu/summarize.py /tmp/bo 2>&1 | grep "| y " | cut -c1-700
grep -hiE "error|Traceback" /tmp/bo/log_*.txt | sort | uniq -c | head -10
