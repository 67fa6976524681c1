bash .devdata/go9.sh   # python3 .devdata/pre_bench.py 32; python3 .devdata/pre_bench.py 64
bash .devdata/go11.sh  # python3 .devdata/pre_bench2.py 32 prof
bash .devdata/go12.sh  # python3 .devdata/pre_bench3.py 32 prof
