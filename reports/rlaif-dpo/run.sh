#!/usr/bin/env bash
# The DPO run of reports/rlaif-dpo/README.md, start to end, on CPU:
#   bash reports/rlaif-dpo/run.sh
# 1. inputs: the ladder winner's soft labels of its 400 TL;DR pairs (from the committed labels,
#    through winner.json's aggregation) and the judge's comparisons (posts of no training pair)
# 2. SFT of SmolLM2-135M-Instruct on TL;DR posts' own summaries | the judge: a reward model on
#    human comparisons of other posts (two jobs side by side, one thread each)
# 3. DPO from SFT on the 400 pairs: RLAIF (soft AI labels), then RLHF (the same pairs' human
#    labels); one after the other: a DPO run peaks near 11 GB, two side by side ran out of memory
# 4. evaluation on held-out posts (never trained on): RLAIF vs SFT | RLHF vs SFT, then RLAIF vs
#    RLHF under the judge; then the same under the labeler (not independent: it made the AI
#    labels), one at a time
# A step whose output exists is skipped, so rerunning continues where it stopped. Everything
# goes to $OUT (default runs/rlaif-dpo, not committed); reports/rlaif-dpo/results.py writes the
# aggregate figures and plots into reports/rlaif-dpo/.
set -euo pipefail
cd "$(dirname "$0")/../.."

DATA=${DATA:-../shared/data}
OUT=${OUT:-runs/rlaif-dpo}
WINNER=${WINNER:-reports/ladder/winner.json}
POLICY=${POLICY:-smollm2-135m}
PROMPT_TOKENS=${PROMPT_TOKENS:-256}
HELD_OUT=${HELD_OUT:-0.4}                   # share of the 500 posts held out (200 posts)
EVAL_POSTS=${EVAL_POSTS:-200}               # held-out posts per evaluation by the judge
LABELER_POSTS=${LABELER_POSTS:-100}         # held-out posts per evaluation by the labeler
JUDGE_PAIRS=${JUDGE_PAIRS:-320}             # the judge's training comparisons
SFT_LR=${SFT_LR:-5e-5}
DPO_LR=${DPO_LR:-5e-6}
POSTS=$DATA/openai_tldr_posts/tldr_test.json
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$OUT"
touch "$OUT/timings.tsv"
step() {  # step NAME OUTPUT CMD...: run CMD unless OUTPUT exists; seconds to timings.tsv
  local name=$1 output=$2; shift 2
  if [ -e "$output" ]; then echo "[$name] done before: $output"; return; fi
  echo "[$name] $(date -u +%H:%M:%S) start"
  local start=$SECONDS
  "$@" >>"$OUT/$name.log" 2>&1 || { echo "[$name] failed: see $OUT/$name.log" >&2; return 1; }
  printf '%s\t%s\n' "$name" $((SECONDS - start)) >>"$OUT/timings.tsv"
  echo "[$name] $(date -u +%H:%M:%S) done in $((SECONDS - start)) s"
}
split=(--test-fraction "$HELD_OUT" --split-seed 0)

labelbench models pull "$POLICY" >/dev/null
step inputs "$OUT/ai-labels" python reports/rlaif-dpo/inputs.py "$DATA" "$OUT"

step sft "$OUT/sft/policy" rlaif sft "$POSTS" --out "$OUT/sft" --model "$POLICY" "${split[@]}" \
  --max-prompt-tokens "$PROMPT_TOKENS" --learning-rate "$SFT_LR" --epochs 1 --batch-size 8 \
  --eval-limit 100 --response-length 48 &
step judge "$OUT/judge/reward_metrics.json" rlaif reward "$OUT/judge-comparisons.jsonl" \
  --split train --model "$POLICY" --out "$OUT/judge" --limit "$JUDGE_PAIRS" \
  --eval "$OUT/judge-comparisons.jsonl" --eval-split test --max-prompt-tokens "$PROMPT_TOKENS" \
  --batch-size 8 --epochs 1 --learning-rate 2e-5 &
wait

dpo_args=(--policy "$OUT/sft/policy" --max-prompt-tokens "$PROMPT_TOKENS" --epochs 1
  --batch-size 8 --learning-rate "$DPO_LR" --beta 0.1)
step dpo-rlaif "$OUT/dpo-rlaif/policy" rlaif dpo "$OUT/ai-labels" --labels ai \
  --out "$OUT/dpo-rlaif" "${dpo_args[@]}"
step dpo-rlhf "$OUT/dpo-rlhf/policy" rlaif dpo "$OUT/ai-labels" --labels human \
  --out "$OUT/dpo-rlhf" "${dpo_args[@]}"

evaluate() {  # evaluate NAME POLICY REFERENCE JUDGE...
  local name=$1 policy=$2 reference=$3; shift 3
  step "eval-$name" "$OUT/eval-$name.json" rlaif evaluate --policy "$policy" \
    --reference "$reference" --prompts "$POSTS" --split test "${split[@]}" \
    --response-length 48 --max-prompt-tokens "$PROMPT_TOKENS" --out "$OUT/eval-$name.json" "$@"
}
judge=(--reward-model "$OUT/judge" --limit "$EVAL_POSTS")
evaluate rlaif-vs-sft "$OUT/dpo-rlaif/policy" "$OUT/sft/policy" "${judge[@]}" &
evaluate rlhf-vs-sft "$OUT/dpo-rlhf/policy" "$OUT/sft/policy" "${judge[@]}" &
wait
evaluate rlaif-vs-rlhf "$OUT/dpo-rlaif/policy" "$OUT/dpo-rlhf/policy" "${judge[@]}"
# the hybrid arm: 100 of the 400 pairs take their human label, the rest the AI's soft label
# (`--labels mixed`; each row's source is recorded), DPO from SFT as the other arms, then judged
step dpo-hybrid "$OUT/dpo-hybrid/policy" rlaif dpo "$OUT/ai-labels" --labels mixed \
  --human-limit 100 --out "$OUT/dpo-hybrid" "${dpo_args[@]}"
evaluate hybrid-vs-sft "$OUT/dpo-hybrid/policy" "$OUT/sft/policy" "${judge[@]}"

# the labeler judge, one at a time (about 12 GB each: the 1.5B's load; earlier attempts reached
# 20-23 GB while the labelling engine kept autograd state, fixed in 2efa402)
labeler=(--winner "$WINNER" --limit "$LABELER_POSTS")
evaluate labeler-rlaif-vs-sft "$OUT/dpo-rlaif/policy" "$OUT/sft/policy" "${labeler[@]}"
evaluate labeler-rlhf-vs-sft "$OUT/dpo-rlhf/policy" "$OUT/sft/policy" "${labeler[@]}"
evaluate labeler-rlaif-vs-rlhf "$OUT/dpo-rlaif/policy" "$OUT/dpo-rlhf/policy" "${labeler[@]}"
echo "done: $OUT"
