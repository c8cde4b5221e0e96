#!/usr/bin/env bash
# The small real RLAIF run of reports/rlaif-small/README.md, start to end, on CPU:
#   bash reports/rlaif-small/run.sh
# Sizes are environment variables (defaults: the run in the README). Models, datasets and the
# aggregate results (results.json) go to $OUT (default runs/rlaif-small, not committed); with
# UPDATE_REPORT=1 the results also replace the committed reports/rlaif-small/results.json.
set -euo pipefail
cd "$(dirname "$0")/../.."

DATA=${DATA:-../shared/data}
OUT=${OUT:-runs/rlaif-small}
MODEL=${MODEL:-smollm2-135m}                       # starting policy, labeler and reward backbone
VARIANT=${VARIANT:-summarization/base-0shot}       # or --winner winner.json (see rlaif label)
LABEL_PAIRS=${LABEL_PAIRS:-24}                     # TL;DR training comparisons labelled by the AI
EVAL_PAIRS=${EVAL_PAIRS:-64}                       # held-out human comparisons for RM accuracy
PROMPT_TOKENS=${PROMPT_TOKENS:-96}                 # prompts keep their last N tokens (CPU budget)
PPO_PROMPTS=${PPO_PROMPTS:-32}
PPO_UPDATES=${PPO_UPDATES:-4}
EVAL_PROMPTS=${EVAL_PROMPTS:-16}
UPDATE_REPORT=${UPDATE_REPORT:-0}                  # 1: also update the committed report's results
COMPARISONS=$DATA/openai_tldr_comparisons/batch13.json
POSTS=$DATA/openai_tldr_posts/tldr_test.json
mkdir -p "$OUT"
: >"$OUT/timings.tsv"
step() { local name=$1; shift; local start=$SECONDS; "$@"; printf '%s\t%s\n' "$name" $((SECONDS - start)) >>"$OUT/timings.tsv"; }

labelbench models pull "$MODEL"
# 1. AI labels on the training split of TL;DR comparisons (split by post id).
step label rlaif label --data "$COMPARISONS" --split train --limit "$LABEL_PAIRS" \
  --labeler "$MODEL" --variant "$VARIANT" --out "$OUT/ai-labels"
# 2. Reward models on the same pairs: AI soft labels (RLAIF) and their human labels (RLHF).
for labels in ai human; do
  step "reward-$labels" rlaif reward "$OUT/ai-labels" --labels "$labels" --model "$MODEL" \
    --out "$OUT/rm-$labels" --eval "$COMPARISONS" --eval-split test --eval-limit "$EVAL_PAIRS" \
    --max-prompt-tokens "$PROMPT_TOKENS" --batch-size 4 --epochs 1 --learning-rate 2e-5
done
# 3. PPO on TL;DR posts (training split) with the RLAIF reward model (a fresh run each time).
rm -rf "$OUT/ppo"
step ppo rlaif ppo --prompts "$POSTS" --split train --limit "$PPO_PROMPTS" --policy "$MODEL" \
  --reward-model "$OUT/rm-ai" --out "$OUT/ppo" --updates "$PPO_UPDATES" --batch-size 4 \
  --num-minibatches 2 --ppo-epochs 1 --response-length 24 --max-prompt-tokens "$PROMPT_TOKENS" \
  --learning-rate 1e-5 --kl-coef 0.05
# 4. The trained policy against the start on held-out posts: the human-label RM and the labeler judge.
step evaluate rlaif evaluate --policy "$OUT/ppo/policy" --reference "$MODEL" --prompts "$POSTS" \
  --split test --limit "$EVAL_PROMPTS" --reward-model "$OUT/rm-human" --labeler "$MODEL" \
  --variant "$VARIANT" --response-length 24 --max-prompt-tokens "$PROMPT_TOKENS" \
  --out "$OUT/evaluation.json"

python - "$OUT" "$UPDATE_REPORT" <<'PY'
import json, sys
from pathlib import Path
out, update_report = Path(sys.argv[1]), sys.argv[2] == "1"
read = lambda p: json.loads((out / p).read_text())
result = {
    "reward_model_ai_labels": read("rm-ai/reward_metrics.json"),
    "reward_model_human_labels": read("rm-human/reward_metrics.json"),
    "ppo": {"config": read("ppo/ppo_config.json"),
            "log": [json.loads(l) for l in (out / "ppo/log.jsonl").read_text().splitlines()]},
    "evaluation": read("evaluation.json"),
    "seconds": {k: int(v) for k, v in (l.split("\t") for l in (out / "timings.tsv").read_text().splitlines())},
}
text = json.dumps(result, indent=2) + "\n"
(out / "results.json").write_text(text)
if update_report:
    Path("reports/rlaif-small/results.json").write_text(text)
print(json.dumps(result["seconds"]))
print(f"results: {out / 'results.json'}" + (" and reports/rlaif-small/results.json" if update_report else ""))
PY
