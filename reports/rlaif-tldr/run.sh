#!/usr/bin/env bash
# The RLAIF run of reports/rlaif-tldr/README.md, start to end, on CPU:
#   bash reports/rlaif-tldr/run.sh
# The labeler is the size ladder's winner (reports/ladder/winner.json: qwen2.5-coder-1.5b,
# summarization/base-0shot, bfloat16). Steps, one thread each where two run side by side:
#   1. AI labels (the ladder's cached labels of the same 400 TL;DR pairs)
#   2. reward models on the AI labels | on the same pairs' human labels
#   3. PPO with the AI-label RM (RLAIF), then with the human-label RM (RLHF): one at a time, on
#      PPO_THREADS threads (a PPO run peaks near 11 GB: two side by side leave no room)
#   4. evaluations: RLAIF vs SFT | RLHF vs SFT
#   5. RLAIF vs RLHF | direct RLAIF (PPO with the labeler's direct score as the reward; DIRECT=1),
#      then direct RLAIF vs SFT
# A step whose output exists is skipped and an interrupted PPO run resumes from its last
# checkpoint, so rerunning the script continues where it stopped (delete $OUT to start over).
# Everything goes to $OUT (default runs/rlaif-tldr, not committed); UPDATE_REPORT=1 also writes
# the aggregate figures and the plot to reports/rlaif-tldr/.
set -euo pipefail
cd "$(dirname "$0")/../.."

DATA=${DATA:-../shared/data}
OUT=${OUT:-runs/rlaif-tldr}
WINNER=${WINNER:-reports/ladder/winner.json}
POLICY=${POLICY:-smollm2-135m}              # starting (SFT) policy and reward-model backbone
LABEL_PAIRS=${LABEL_PAIRS:-400}             # TL;DR comparisons labelled by the AI
EVAL_PAIRS=${EVAL_PAIRS:-320}               # held-out human comparisons (posts not trained on)
PROMPT_TOKENS=${PROMPT_TOKENS:-256}         # prompts keep their last N tokens
PPO_UPDATES=${PPO_UPDATES:-20}
DIRECT_UPDATES=${DIRECT_UPDATES:-6}
EVAL_POSTS=${EVAL_POSTS:-100}               # held-out posts per head-to-head evaluation
DIRECT=${DIRECT:-1}
PRECISION=${PRECISION:-bfloat16}            # autocast for reward-model training and PPO
PPO_THREADS=${PPO_THREADS:-2}
UPDATE_REPORT=${UPDATE_REPORT:-0}
COMPARISONS=$DATA/openai_tldr_comparisons/batch13.json
POSTS=$DATA/openai_tldr_posts/tldr_test.json  # posts split 80/20 by post: PPO / evaluation
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$OUT"
touch "$OUT/timings.tsv"
# step NAME OUTPUT CMD...: run CMD unless OUTPUT exists; its seconds go to timings.tsv (a
# resumed step adds a row) and its output to $OUT/NAME.log.
step() {
  local name=$1 output=$2; shift 2
  if [ -e "$output" ]; then echo "[$name] done before: $output"; return; fi
  echo "[$name] $(date -u +%H:%M:%S) start"
  local start=$SECONDS
  "$@" >>"$OUT/$name.log" 2>&1 || { echo "[$name] failed: see $OUT/$name.log" >&2; return 1; }
  printf '%s\t%s\n' "$name" $((SECONDS - start)) >>"$OUT/timings.tsv"
  echo "[$name] $(date -u +%H:%M:%S) done in $((SECONDS - start)) s"
}
ppo_args=(--prompts "$POSTS" --split train --policy "$POLICY"
  --batch-size 16 --num-minibatches 4 --ppo-epochs 2 --response-length 48
  --max-prompt-tokens "$PROMPT_TOKENS" --learning-rate 1e-5 --kl-coef 0.05
  --precision "$PRECISION" --save-every 3 --no-progress)
eval_args=(--prompts "$POSTS" --split test --limit "$EVAL_POSTS" --reward-model "$OUT/rm-human"
  --winner "$WINNER" --response-length 48 --max-prompt-tokens "$PROMPT_TOKENS")

labelbench models pull "$POLICY" >/dev/null
# 1. AI labels: the ladder's 400 TL;DR items (the same seeded sample, so the ladder's cached
#    labels are reused), both orders.
step label "$OUT/ai-labels" rlaif label --data "$COMPARISONS" --limit "$LABEL_PAIRS" --seed 0 \
  --winner "$WINNER" --out "$OUT/ai-labels"

reward() {  # reward LABELS: a reward model on the same pairs, AI or human labels
  step "reward-$1" "$OUT/rm-$1/reward_metrics.json" rlaif reward "$OUT/ai-labels" --labels "$1" \
    --model "$POLICY" --out "$OUT/rm-$1" --eval "$COMPARISONS" --eval-limit "$EVAL_PAIRS" \
    --max-prompt-tokens "$PROMPT_TOKENS" --batch-size 8 --epochs 1 --learning-rate 2e-5 \
    --precision "$PRECISION"
}
ppo() {  # ppo NAME UPDATES ARGS...: a PPO run into $OUT/ppo-NAME; a run with a checkpoint
  # and fewer than UPDATES updates logged (interrupted, or asked for more) resumes from it
  local name=$1 updates=$2; shift 2
  local dir=$OUT/ppo-$name resume=()
  local logged=$( (cat "$dir/log.jsonl" 2>/dev/null || true) | wc -l)
  if [ -e "$dir/policy" ] && [ "$logged" -ge "$updates" ]; then
    echo "[ppo-$name] done before: $dir/policy ($logged updates)"; return
  fi
  if compgen -G "$dir/checkpoint-*/ppo_state.json" >/dev/null; then resume=(--resume); fi
  rm -rf "$dir/policy"
  step "ppo-$name" "$dir/policy" rlaif ppo "${ppo_args[@]}" --updates "$updates" "$@" \
    --out "$dir" "${resume[@]}"
}
evaluate() {  # evaluate NAME POLICY REFERENCE
  step "evaluate-$1" "$OUT/evaluate-$1.json" rlaif evaluate --policy "$2" --reference "$3" \
    "${eval_args[@]}" --out "$OUT/evaluate-$1.json"
}
wait_both() {  # wait_both PID1 PID2: two steps started side by side; fails when either failed
  local status=0
  wait "$1" || status=1
  wait "$2" || status=1
  return $status
}
reward ai & first=$!
reward human & second=$!
wait_both $first $second
OMP_NUM_THREADS=$PPO_THREADS ppo ai "$PPO_UPDATES" --reward-model "$OUT/rm-ai"
OMP_NUM_THREADS=$PPO_THREADS ppo human "$PPO_UPDATES" --reward-model "$OUT/rm-human"
evaluate rlaif-vs-sft "$OUT/ppo-ai/policy" "$POLICY" & first=$!
evaluate rlhf-vs-sft "$OUT/ppo-human/policy" "$POLICY" & second=$!
wait_both $first $second
if [ "$DIRECT" = 1 ]; then  # direct RLAIF's PPO (about 14 GB with the labeler) beside one evaluation
  evaluate rlaif-vs-rlhf "$OUT/ppo-ai/policy" "$OUT/ppo-human/policy" & first=$!
  ppo direct "$DIRECT_UPDATES" --winner "$WINNER" & second=$!
  wait_both $first $second
  OMP_NUM_THREADS=2 evaluate direct-vs-sft "$OUT/ppo-direct/policy" "$POLICY"
else
  OMP_NUM_THREADS=2 evaluate rlaif-vs-rlhf "$OUT/ppo-ai/policy" "$OUT/ppo-human/policy"
fi

python reports/rlaif-tldr/results.py "$OUT" $([ "$UPDATE_REPORT" = 1 ] && echo --update-report)
