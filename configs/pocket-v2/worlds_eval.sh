#!/usr/bin/env bash
# Issue 9's must-show protocol: `lyra demo --world` on six held-out worlds (no SDG run uses these seeds; photo worlds
# show held-out photos), pipeline vs depth lifting, PSNR / SSIM at the novel orbit against exact renders.
#   bash configs/pocket-v2/worlds_eval.sh OUTROOT [extra lyra demo args, e.g. --version pocket-v2 --decoder DIR]
# WORLDS="room:6 yard:7 photo:8" picks other worlds (kind:seed). Anchored runs also print the decoder alone.
set -euo pipefail
out=${1:?usage: worlds_eval.sh OUTROOT [lyra demo args...]}; shift
for pair in ${WORLDS:-room:0 yard:1 photo:2 room:3 yard:4 photo:5}; do
  k=${pair%%:*}; s=${pair##*:}
  lyra demo --world --world-kind "$k" --world-seed "$s" --out "$out/$k-$s" --quiet "$@" > /dev/null
  python -c "
import json; r=json.load(open('$out/$k-$s/report.json')); m=r['metrics']; p=m['pipeline']; b=m['baseline_depth_lifting']
d=m.get('decoder_only'); alone=f\"  alone {d['psnr']:.2f} / {d['ssim']:.3f}\" if d else ''
print(f\"$k $s  pipeline {p['psnr']:.2f} / {p['ssim']:.3f}  lifting {b['psnr']:.2f} / {b['ssim']:.3f}{alone}  \"
      f\"kept/px {r['gaussians']['kept_per_pixel']}  {r['total_s']:.0f} s\")"
done
