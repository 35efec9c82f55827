#!/usr/bin/env bash
# Cross-checks the PyTorch model of an arch file (scripts/fbnet_torch.py, through
# bench/torch_model.py) against the published FBNetV3-A numbers, and smoke-tests bench/torch_bench.py.
# Skips (exit 0) when /usr/bin/python3 cannot import torch.
set -u
cd "$(dirname "$0")/../.."
PY=${PYTHON:-/usr/bin/python3}
if ! "$PY" -c 'import torch' 2>/dev/null; then
  echo "SKIP: $PY cannot import torch (Debian python3-torch)"; exit 0
fi
fail=0
check() { # name, expected substring, actual text
  if grep -qF -- "$2" <<<"$3"; then echo "ok   $1"; else
    echo "FAIL $1: expected '$2' in:"; sed 's/^/    /' <<<"$3"; fail=1; fi
}

# The published counting convention (docs/method.md section 2).
out=$("$PY" bench/torch_model.py archs/fbnetv3_a.json --count 2>&1)
check "FBNetV3-A MACs" "MACs 356.598 M (356598280)" "$out"
check "FBNetV3-A MACs, fbnet convention" "fbnet's convention): 356.596296 M" "$out"
check "FBNetV3-A params" "params 8.542 M (conv+linear weights 8542224" "$out"
check "FBNetV3-A all trainable" "all trainable 8598480" "$out"

bad=$(mktemp); trap 'rm -f "$bad"' EXIT
echo '{"blocks":[{"stage":"s","rows":[["ir_k9_xx",16,1,1]]}]}' >"$bad"
out=$("$PY" - "$bad" <<'PYEOF' 2>&1
import sys, torch
sys.path.insert(0, "bench")
import torch_model as tm
print("div8", [tm.div8(n) for n in (1, 8, 10, 12, 20, 36, 44, 120, 1984 * 0.5)])
# Standard padding ignores dw_pad: 28->14->7 instead of 28->13->6.
std = tm.build("archs/fbnetv3_a.json", standard_padding=True)
print("standard_macs", tm.count(std, 224)[0])
m = tm.build("archs/fbnetv3_a.json", in_channels=1, num_classes=10, width=0.5)
m.eval()
print("shape", tuple(m(torch.randn(2, 1, 64, 64))["cls.logits"].shape))
b = m.stage2[1]  # a residual IRF starts as the identity (last BN gamma 0)
z = torch.randn(1, 16, 8, 8)
print("residual_identity", b.residual, bool(torch.equal(b(z), z)))
print("strides", m.stage2[0].dw.conv.stride, m.stage2[1].dw.conv.stride)
print("dw_pad", m.stage4[0].dw.conv.padding, m.stage5[0].dw.conv.padding,
      std.stage4[0].dw.conv.padding)
print("missing_rc", tm.main(["/nonexistent.json", "--count"]))
print("bad_rc", tm.main([sys.argv[1], "--count"]))
PYEOF
)
check "div8" "div8 [8, 8, 16, 16, 24, 40, 48, 120, 992]" "$out"
check "standard padding MACs" "standard_macs 408739872" "$out"
check "forward shape" "shape (2, 10)" "$out"
check "residual zero-init" "residual_identity True True" "$out"
check "repeat keeps stride on first copy only" "strides (2, 2) (1, 1)" "$out"
check "explicit dw_pad" "dw_pad (1, 1) (0, 0) (2, 2)" "$out"
check "missing file fails" "missing_rc 1" "$out"
check "unknown op message" "unknown op 'ir_k9_xx'" "$out"
check "unknown op fails" "bad_rc 1" "$out"

# A tiny timed run: the last line is JSON with sec_per_step.
out=$("$PY" bench/torch_bench.py archs/fbnetv3_a.json --input 64 --batch 2 --width 0.25 \
      --classes 10 --steps 1 --warmup 0 --threads 1 2>&1 | tail -n 1)
check "torch_bench JSON" '"sec_per_step": ' "$out"
check "torch_bench mode" '"mode": "train"' "$out"

exit $fail
