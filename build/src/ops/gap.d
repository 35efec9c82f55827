build/src/ops/gap.o: src/ops/gap.c src/ops/op.h src/core/rng.h
src/ops/op.h:
src/core/rng.h:
