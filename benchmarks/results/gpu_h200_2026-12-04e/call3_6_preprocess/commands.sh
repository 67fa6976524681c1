# go9.sh
source .devdata/common.sh
python3 .devdata/pre_bench.py 32 2>&1 | grep -v Warning | tail -18
python3 .devdata/pre_bench.py 64 2>&1 | grep -v Warning | tail -6

# go10.sh
source .devdata/common.sh
python3 .devdata/pre_bench2.py 32 2>&1 | grep -v Warning | tail -16

# go11.sh
source .devdata/common.sh
python3 .devdata/pre_bench2.py 32 prof 2>&1 | grep -v Warning | grep -v "^round" | tail -75

# go12.sh
source .devdata/common.sh
python3 .devdata/pre_bench3.py 32 prof 2>&1 | grep -v Warning | tail -35

