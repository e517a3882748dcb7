#!/usr/bin/env bash
# Runs every shipped scenario (examples/simulate/scenarios) and the variants docs/economics.md reports,
# writing each one's table (.txt), JSON and plot (.svg) to OUT, and a summary table (summary.md).
#
#   examples/simulate/shipped.sh BUILD/examples/cascade-simulate OUT
#
# Exits non-zero when a run fails or a plot is not well-formed XML (checked with xmllint when present).
set -euo pipefail
bin=${1:?usage: shipped.sh CASCADE_SIMULATE OUT}
out=${2:?usage: shipped.sh CASCADE_SIMULATE OUT}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
scen="$here/scenarios"
mkdir -p "$out"

# id | scenario | title | --set overrides
runs=(
  "seed-40-runs|seed-40-runs|The seed's 40 reports over 4 days, one 4-hour 1010 block of Groq|"
  "seed-1k-1org|seed-chain|Seed chain, 1,000 reports/day, 5 Groq keys in one organization|"
  "seed-1k-5orgs|seed-chain|Seed chain, 1,000 reports/day, 5 Groq keys in five organizations|tiers[0].organizations=5"
  "seed-1k-1org-cache|seed-chain|Seed chain, 1,000 reports/day, one organization, cache on|chain.cache=true"
  "seed-1k-5orgs-cache|seed-chain|Seed chain, 1,000 reports/day, five organizations, cache on|tiers[0].organizations=5 chain.cache=true"
  "seed-1k-1org-unknown-groups|seed-chain|Seed chain, 1,000 reports/day, one organization the chain is not told of|tiers[0].chain_knows_groups=false"
  "seed-10k-1org|seed-chain|Seed chain, 10,000 reports/day, one organization|load.requests_per_day=10000"
  "seed-10k-5orgs|seed-chain|Seed chain, 10,000 reports/day, five organizations|load.requests_per_day=10000 tiers[0].organizations=5"
  "seed-10k-1org-cache|seed-chain|Seed chain, 10,000 reports/day, one organization, cache on|load.requests_per_day=10000 chain.cache=true"
  "seed-10k-5orgs-cache|seed-chain|Seed chain, 10,000 reports/day, five organizations, cache on|load.requests_per_day=10000 tiers[0].organizations=5 chain.cache=true"
  "cheap-1k|cheap-chain|Cheap chain (Groq, OpenRouter free, Hugging Face, DeepSeek, Vertex), 1,000 reports/day|"
  "cheap-1k-50rpd|cheap-chain|Cheap chain, 1,000 reports/day, OpenRouter account without \$10 of credits (50 free requests/day)|tiers[1].limits.requests_per_day=50"
  "cheap-1k-cache|cheap-chain|Cheap chain, 1,000 reports/day, cache on|chain.cache=true"
  "cheap-10k|cheap-chain|Cheap chain, 10,000 reports/day|load.requests_per_day=10000"
  "cheap-10k-cache|cheap-chain|Cheap chain, 10,000 reports/day, cache on|load.requests_per_day=10000 chain.cache=true"
)

summary="$out/summary.md"
echo "| run | requests | answered by (share) | free | template | cost / 1,000 | cost / month | p50 / p99 | limits tripped | real time |" > "$summary"
echo "|---|---|---|---|---|---|---|---|---|---|" >> "$summary"
for r in "${runs[@]}"; do
  IFS='|' read -r id file title sets <<< "$r"
  args=()
  for s in $sets; do args+=(--set "$s"); done
  "$bin" "$scen/$file.json" "${args[@]}" --svg "$out/$id.svg" --title "$title" > "$out/$id.txt"
  "$bin" "$scen/$file.json" "${args[@]}" --json > "$out/$id.json"
  if command -v xmllint > /dev/null; then xmllint --noout "$out/$id.svg"; fi
  python3 - "$out/$id.json" "$id" >> "$summary" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
n = r["requests"]
by = ", ".join(f'{s["name"]} {100.0 * s["answers"] / n:.1f}%' for s in r["series"] if s["answers"])
trips = ", ".join(f'{t["tier"]} {t["limit"]} {t["count"]}' for t in r["trips"]) or "none"
print(f'| {sys.argv[2]} | {n} | {by} | {100 * r["free_share"]:.1f}% | {100 * r["template_share"]:.1f}% | '
      f'${r["cost_per_1000_usd"]:.2f} | ${r["cost_per_month_usd"]:.2f} | {r["latency_p50_ms"] / 1000:.1f} s / {r["latency_p99_ms"] / 1000:.1f} s | '
      f'{trips} | {r["wall_seconds"]:.2f} s |')
PY
done
echo "wrote $(( ${#runs[@]} )) runs to $out (summary: $summary)"
