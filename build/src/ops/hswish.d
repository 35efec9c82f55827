build/src/ops/hswish.o: src/ops/hswish.c src/ops/op.h src/core/rng.h
src/ops/op.h:
src/core/rng.h:
